"""The sweep engine on several devices: the runs axis sharded over 4 (forced host) CPU devices.

What is reproducible (docs/multi-device.md), each checked here in
subprocesses, since XLA_FLAGS must be set before jax starts:
- same config, same device count: bit-identical. The tiny sweep on 4 devices, interrupted after
  one chunk and resumed from its orbax checkpoint, writes byte for byte the results.csv and
  runs.csv of the same sweep run uninterrupted by 2 processes x 2 devices (jax.distributed,
  gloo): one comparison checks both the resume and the multi-process run (either one breaking
  makes the files differ).
- another device count: the same runs (runs.csv), the same initial state (every leaf of every
  run before the first chunk: keys, params, masks, replay, env), the same evaluation steps,
  sparsities, active counts and health flags; returns need not match after the first updates.
  XLA compiles another program for another per-device batch: partitioned over 4 devices it runs
  CSE before its algebraic simplifier (e.g. Adam's bias correction stays a division), and
  XLA:CPU's vectorised exp/log round an element differently in a loop's tail than in its body,
  so a value can depend on how many runs a device holds.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import hashlib, json, sys
    sys.path.insert(0, {tests!r})
    import jax, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from conftest import tiny_sweep_config
    from purejaxsparse import store, sweep
    from purejaxsparse.config import plan_sweep

    placements, initial = [], {{}}

    class Recording(store.SweepCheckpoints):
        # the state after every chunk, as the engine checkpoints it (before it is donated)
        def save(self, chunks_done, state):
            placements.append(sorted({{
                (x.shape[0], isinstance(x.sharding, NamedSharding) and x.sharding.spec == P("runs"),
                 len(x.sharding.device_set)) for x in jax.tree.leaves(state)}}))
            super().save(chunks_done, state)

    class RecordingChunk:
        # the compiled chunk; the state it is first called with (the initial state of a new
        # sweep): a digest of each leaf over the real runs (not the padded copies)
        def __init__(self, compiled, runs):
            self.compiled, self.runs = compiled, runs
        def memory_analysis(self):
            return self.compiled.memory_analysis()
        def __call__(self, states, hparams, t0):
            if not initial and jax.process_count() == 1:
                for path, x in jax.tree_util.tree_flatten_with_path(states)[0]:
                    data = np.ascontiguousarray(np.asarray(x)[:self.runs])
                    initial[jax.tree_util.keystr(path)] = hashlib.sha256(data.tobytes()).hexdigest()
            return self.compiled(states, hparams, t0)

    chunk_function = sweep.chunk_function
    def recording_chunk_function(agent, chunk_evals):
        jitted = chunk_function(agent, chunk_evals)
        class Lowering:
            def lower(self, *args):
                lowered = jitted.lower(*args)
                return type("Lowered", (), {{"compile": lambda _, *opts: RecordingChunk(lowered.compile(*opts), plan.num_runs)}})()
        return Lowering()

    store.SweepCheckpoints = Recording
    sweep.chunk_function = recording_chunk_function
    out, interrupt = sys.argv[1], sys.argv[2] == "interrupt"
    if len(sys.argv) > 3:  # one of several processes: coordinator address, count, index
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    plan = plan_sweep(tiny_sweep_config())
    quiet = dict(progress=False, log=lambda *a: None)
    if interrupt:
        first = sweep.run_sweep(plan, out, max_chunks=1, **quiet)
        rest = sweep.run_sweep(plan, out, resume=True, **quiet)
        chunks = [first.chunks_run, rest.chunks_run]
    else:
        chunks = [sweep.run_sweep(plan, out, **quiet).chunks_run]
    print(json.dumps({{"devices": jax.device_count(), "processes": jax.process_count(),
                      "runs": plan.num_runs, "chunks": chunks, "placements": placements,
                      "initial": initial}}))
""").format(tests=str(TESTS))


def _start(out: Path, devices: int, interrupt: bool, cache: Path, process: tuple = ()):
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
    if devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env.update(XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu",
               # the resumed half recompiles the same chunk: let it come from the disk cache
               JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    args = [sys.executable, "-c", CHILD, str(out), "interrupt" if interrupt else "whole", *map(str, process)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-4000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """(dir, report) of the tiny sweep on 4 devices, interrupted and resumed ("four"), and on 1
    device ("one"); the uninterrupted 4-device run is the `hosts` fixture's."""
    root = tmp_path_factory.mktemp("multidevice")
    procs = {"four": _start(root / "four", 4, interrupt=True, cache=root / "cache4"),
             "one": _start(root / "one", 1, interrupt=False, cache=root / "cache1")}
    return {name: (root / name, _finish(proc)) for name, proc in procs.items()}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """(dir, report) of each of 2 processes x 2 devices running the tiny sweep together."""
    root = tmp_path_factory.mktemp("multihost")
    address = f"localhost:{_free_port()}"
    procs = [_start(root / "hosts", 2, interrupt=False, cache=root / f"cache{i}", process=(address, 2, i))
             for i in range(2)]
    return [(root / "hosts", _finish(proc)) for proc in procs]


def test_same_device_count_is_bit_identical_across_a_resume(sweeps, hosts):
    """4 devices, interrupted after one chunk and resumed, against 4 devices (2 processes x 2)
    run through: the same program, so the same files byte for byte."""
    (four_dir, four), (whole_dir, whole) = sweeps["four"], hosts[0]
    assert four["devices"] == whole["devices"] == 4
    assert four["chunks"] == [1, 2] and whole["chunks"] == [3]  # interrupted + resumed vs whole
    for name in ("results.csv", "runs.csv"):
        assert (four_dir / name).read_text() == (whole_dir / name).read_text(), name
    lines = (four_dir / "results.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 6 * 6  # 6 runs (not the 8 padded ones) x 6 evaluations


def test_another_device_count_starts_identically_and_keeps_the_schedule(sweeps):
    """1 vs 4 devices: same runs, bit-identical initial state of every run, and the same
    evaluation steps, sparsities, active counts and health flags (set by the schedule, not by
    floating point). Returns are not compared: they may drift after the first updates."""
    (four_dir, four), (one_dir, one) = sweeps["four"], sweeps["one"]
    assert one["devices"] == 1 and one["chunks"] == [3]
    assert (four_dir / "runs.csv").read_text() == (one_dir / "runs.csv").read_text()
    assert one["initial"] and four["initial"] == one["initial"]
    assert any("masks" in leaf for leaf in one["initial"]) and any("params" in leaf for leaf in one["initial"])
    res4, res1 = (pd.read_csv(d / "results.csv") for d in (four_dir, one_dir))
    schedule = ["run", "method", "seed", "step", "actual_sparsity", "active_params", "finite", "diverged_step"]
    assert len(res1) == 6 * 6 and res4[schedule].equals(res1[schedule])


def test_state_is_sharded_over_four_devices(sweeps):
    (_, four), (_, one) = sweeps["four"], sweeps["one"]
    assert four["runs"] == 6  # not a multiple of 4: padded to 8 runs, 2 per device
    assert len(four["placements"]) == 3  # one per chunk (the resumed ones after an orbax restore)
    for chunk in four["placements"]:
        # every state leaf: 8 runs, split along the 'runs' mesh axis over all 4 devices
        assert chunk == [[8, True, 4]], chunk
    for chunk in one["placements"]:  # (on one device XLA may hand back single-device shardings)
        assert {(n, devices) for n, _, devices in chunk} == {(6, 1)}, chunk


def test_two_processes_share_one_sweep(hosts, sweeps):
    """Multi-host, simulated: 2 processes (jax.distributed + gloo) x 2 CPU devices each run the
    same command on one shared output directory; the runs axis spans all 4 devices, and the
    files are bit-identical to one process's on 4 devices (interrupted and resumed there, which
    leaves its files unchanged: test_same_device_count_is_bit_identical_across_a_resume)."""
    (hosts_dir, host0), (_, host1), (four_dir, _) = hosts[0], hosts[1], sweeps["four"]
    for report in (host0, host1):
        assert report["processes"] == 2 and report["devices"] == 4 and report["chunks"] == [3]
        for chunk in report["placements"]:
            assert chunk == [[8, True, 4]], chunk
    # process 0 alone writes the files: exactly those of one process with 4 devices (the same
    # device count, so the same program), no duplicated rows
    for name in ("results.csv", "runs.csv", "config.yaml"):
        assert (hosts_dir / name).read_text() == (four_dir / name).read_text(), name


def test_resume_on_another_device_count_is_refused(sweeps):
    """The checkpoint holds the runs padded for 4 devices (8); 1 device pads 6 runs to 6."""
    four_dir, _ = sweeps["four"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    res = subprocess.run([sys.executable, "-m", "purejaxsparse.cli", "resume", str(four_dir), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env={**env, "JAX_PLATFORMS": "cpu"})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "device count" in res.stderr and "Traceback" not in res.stderr
