"""Sweep engine: one compilation, output schema, resume after a crash equals an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse import sweep
from purejaxsparse.config import load_config, plan_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted tiny sweep (3 chunks) and the number of chunk traces it took."""
    out = tmp_path_factory.mktemp("full")
    plan = plan_sweep(tiny_sweep_config())
    before = sweep.TRACE_COUNT["chunk"]
    stats = sweep.run_sweep(plan, out, progress=False, log=lambda *_: None)
    return out, plan, stats, sweep.TRACE_COUNT["chunk"] - before


def test_whole_sweep_compiles_once(finished):
    _, plan, stats, traces = finished
    assert plan.num_chunks == 3 and stats.chunks_run == 3
    assert traces == 1


def test_output_schema(finished):
    out, plan, _, _ = finished
    results = pd.read_csv(out / "results.csv")
    need = ["run", "env", "agent", "method", "sparsity", "seed", "step", "eval_return",
            "actual_sparsity", "active_params", "dormant_frac"]
    assert list(results.columns[: len(need)]) == need
    assert len(results) == plan.num_runs * 6
    assert sorted(results.step.unique()) == [200, 400, 600, 800, 1000, 1200]
    assert set(results.env) == {"CartPole-v1"} and set(results.agent) == {"dqn"}
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == plan.num_runs == 6  # 2 seeds x 3 methods
    for col in ("run", "env", "agent", "method", "sparsity", "seed", "drop_fraction", "update_interval",
                "start", "end", "use_bias", "learning_rate", "total_params", "active_params"):
        assert col in runs.columns
    assert runs.loc[runs.method == "dense", "sparsity"].eq(0).all()
    assert runs.loc[runs.method == "prune", "start"].eq(200).all()
    # the resolved config plans the same sweep again
    again = plan_sweep(load_config(out / "config.yaml"))
    assert again.runs == plan.runs and again.chunk_evals == plan.chunk_evals


def test_actual_sparsity_hits_target(finished):
    out, _, _, _ = finished
    results = pd.read_csv(out / "results.csv")
    last = results[results.step == results.step.max()]
    for _, row in last.iterrows():
        assert abs(row.actual_sparsity - row.sparsity) < 2e-3, row.to_dict()
    runs = pd.read_csv(out / "runs.csv").set_index("run")
    assert (last.set_index("run").active_params == runs.active_params).all()  # predicted final count


def test_resume_after_crash_equals_uninterrupted(finished, tmp_path):
    full, plan, _, _ = finished
    out = tmp_path / "crashy"
    sweep.run_sweep(plan, out, progress=False, max_chunks=1, log=lambda *_: None)
    # a crash after the next chunk's rows were written but before its checkpoint (chunk 1 ends
    # at step 400): a complete row of step 600, full width, so only its step can drop it, then
    # a row cut mid-line
    lines = (out / "results.csv").read_text().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    step = header.index("step")
    assert last[step] == "400" and len(last) == len(header)
    row = last[:step] + ["600", "999.0"] + last[step + 2:]
    assert len(row) == len(header) and header[step + 1] == "eval_return"
    with open(out / "results.csv", "a") as f:
        f.write(",".join(row) + "\n3,CartPole-v1,dq")
    resumed_plan = plan_sweep(load_config(out / "config.yaml"))
    sweep.run_sweep(resumed_plan, out, resume=True, progress=False, log=lambda *_: None)
    assert (out / "results.csv").read_text() == (full / "results.csv").read_text()
    # resuming a finished sweep does nothing
    stats = sweep.run_sweep(resumed_plan, out, resume=True, progress=False, log=lambda *_: None)
    assert stats.chunks_run == 0


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    config = tiny_sweep_config(total_steps=3000, chunk_evals=1, sweep={"seed": 2, "method": ["dense", "set"]})
    ref = tmp_path / "ref"
    sweep.run_sweep(plan_sweep(config), ref, progress=False, log=lambda *_: None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # sweep key order = run order
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "purejaxsparse.cli"]
    proc = subprocess.Popen(cmd + ["run", str(path), "--out", str(out), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpts = out / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        done = [int(p.name) for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.exists() else []
        if done and max(done) >= 2:
            break
        time.sleep(0.02)
    was_running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert was_running, "the sweep finished before it could be killed"
    res = subprocess.run(cmd + ["resume", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()


def test_checkpoints_every_k_chunks_in_the_background_and_rows_logged_only_once_saved(finished, tmp_path,
                                                                                    monkeypatch):
    """checkpoint_every=2 over 3 chunks saves after chunks 2 and 3 (the last), asynchronously;
    live logging sees a chunk only once a checkpoint at or after it is on disk; the rows equal
    an uninterrupted sweep's; a sweep stopped after chunk 1 (max_chunks) saves chunk 1."""
    from purejaxsparse import store
    from purejaxsparse.fields import ConfigError

    full, _, _, _ = finished
    saves = []
    real_save = store.SweepCheckpoints.save
    monkeypatch.setattr(store.SweepCheckpoints, "save",
                        lambda self, k, state: (saves.append((k, self.asynchronous)), real_save(self, k, state)))
    plan = plan_sweep(tiny_sweep_config(checkpoint_every=2))
    assert plan.config["checkpoint_every"] == 2
    out = tmp_path / "every2"
    logged = []

    def on_chunk(rows, chunks_done, rate):
        on_disk = [int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()]
        logged.append((chunks_done, max(on_disk, default=0)))

    sweep.run_sweep(plan, out, progress=False, log=lambda *_: None, on_chunk=on_chunk)
    assert saves == [(2, True), (3, True)]
    assert [c for c, _ in logged] == [1, 2, 3]
    assert all(newest >= c for c, newest in logged), logged
    assert (out / "results.csv").read_text() == (full / "results.csv").read_text()

    saves.clear()
    out = tmp_path / "stopped"
    sweep.run_sweep(plan, out, progress=False, max_chunks=1, log=lambda *_: None)
    assert saves == [(1, True)]  # the last chunk of this call is saved, though 1 is not a multiple of 2

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="checkpoint_every"):
            plan_sweep(tiny_sweep_config(checkpoint_every=bad))


def test_resolved_config_keeps_hparams_above_agent_method_defaults():
    """The agent's prune default (start 20k) ranks below the config's hparams; the saved config
    must keep it that way, or a resumed sweep would change its runs."""
    config = tiny_sweep_config(hparams={"update_interval": 50, "end": 900, "sparsity": 0.8, "start": 100},
                               method_defaults={})
    plan = plan_sweep(config)
    assert {r["start"] for r in plan.runs if r["method"] == "prune"} == {100}
    again = plan_sweep(yaml.safe_load(yaml.safe_dump(plan.config, sort_keys=False)))
    assert again.runs == plan.runs
    # without a global start, the agent's per-method default applies and is recorded
    config["hparams"].pop("start")
    config["hparams"]["end"] = 30_000
    config["total_steps"] = 40_000  # a run long enough for the agent's start (20k) and this end
    plan = plan_sweep(config)
    assert {r["start"] for r in plan.runs if r["method"] == "prune"} == {20_000}
    assert plan.config["method_defaults"]["prune"]["start"] == 20_000
    assert plan_sweep(yaml.safe_load(yaml.safe_dump(plan.config, sort_keys=False))).runs == plan.runs
