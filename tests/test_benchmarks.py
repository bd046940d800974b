"""The benchmark scripts' reported numbers follow from what they time.

Each script's `main` runs as written, with its compiled work (chunks, scans, child processes,
the rejax side) replaced by stand-ins that advance a fake clock by known seconds. The printed
table and the `ratio: X` line must then hold the numbers those seconds imply (warm-up and
compile excluded, fastest repeat kept, serial time scaled to all runs), in milliseconds instead
of the minutes a real --quick run takes. The real runs are done by hand (BENCHMARKS.md).
"""

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = ("sweep_vs_serial", "sparse_overhead", "pipeline_overhead", "peer_rejax", "scaling")


@pytest.fixture(scope="module", autouse=True)
def on_path():
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


class Clock:
    """time.perf_counter stand-in: advances only when a stand-in says work took time."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def load(name, monkeypatch, clock=None):
    """The benchmark module, its `time.perf_counter` (only its own) replaced by `clock`."""
    mod = importlib.import_module(name)
    if clock is not None:
        monkeypatch.setattr(mod, "time", SimpleNamespace(perf_counter=clock, sleep=time.sleep))
    return mod


@pytest.fixture
def clock():
    return Clock()


def fake_chunks(clock, seconds, warmup=50.0, compile_s=7.0):
    """bl.Chunks stand-in: chunk 0 (warm-up) costs `warmup` s, later chunks `seconds(batched, hps)`."""

    class FakeChunks:
        def __init__(self, agent, chunk_evals, batched):
            self.batched, self.steps_per_chunk = batched, chunk_evals * agent.eval_every
            self.compiled, self.compile_seconds = None, 0.0

        def init(self, keys, hps):
            return {"n": np.shape(keys)[0]}

        def compile(self, states, hps):
            clock.now += compile_s
            self.compiled, self.compile_seconds = True, compile_s
            return compile_s

        def __call__(self, states, hps, chunk_index):
            clock.now += warmup if chunk_index == 0 else seconds(self.batched, hps)
            return states, {}

    return FakeChunks


def last_ratio(out: str) -> float:
    line = out.strip().splitlines()[-1]
    assert line.startswith("ratio: "), line
    return float(line.split()[1])


def table_rows(out: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
            if line.startswith("|") and not line.startswith("|-")]
    return rows


def test_sweep_vs_serial_reports_serial_over_sweep_scaled_to_all_runs(monkeypatch, clock, capsys):
    mod = load("sweep_vs_serial", monkeypatch, clock)
    # the sweep's chunk of all 4 runs takes 1 s; one serial run's chunk 0.75 s; the serial side
    # is timed on 2 of the 4 runs and scaled: 4 x 0.75 = 3 s, so serial / sweep = 3
    monkeypatch.setattr(mod.bl, "Chunks", fake_chunks(clock, lambda batched, hps: 1.0 if batched else 0.75))
    ratio = mod.main(["--runs", "4", "--serial-runs", "2", "--hidden", "8", "--buffer-sizes", "300",
                      "--chunk-evals", "2", "--repeats", "2"])
    out = capsys.readouterr().out
    assert ratio == pytest.approx(3.0) and last_ratio(out) == pytest.approx(3.0)
    header, row = table_rows(out)
    got = dict(zip(header, row))
    assert got["sweep s"] == "1.000" and got["serial s"] == "3.000"
    assert got["sweep steps/s"] == "8,000" and got["serial steps/s"] == "2,667"  # 4 runs x 2000 steps
    assert got["sweep compile s"] == "7.0" and got["serial/sweep"] == "3.00x"


def test_sparse_overhead_reports_the_slowest_method_over_dense(monkeypatch, clock, capsys):
    mod = load("sparse_overhead", monkeypatch, clock)
    # a chunk costs 1 s + 0.1 s per method id (dense 0 ... prune 5): slowest single method 1.5x dense
    cost = lambda batched, hps: 1.0 + 0.1 * float(np.mean(np.asarray(hps.method)))  # noqa: E731
    monkeypatch.setattr(mod.bl, "Chunks", fake_chunks(clock, cost))
    monkeypatch.setattr(mod, "mask_update_seconds", lambda *a: (0.02, 0.0001))
    ratio = mod.main(["--runs", "6", "--hidden", "8", "--chunk-evals", "1", "--repeats", "2"])
    out = capsys.readouterr().out
    assert ratio == pytest.approx(1.5) and last_ratio(out) == pytest.approx(1.5)
    rows = {r[0]: r for r in table_rows(out)[1:] if len(r) == 6}
    assert rows["dense"][2] == "1.000" and rows["prune"][4] == "1.500x" and rows["rigl"][4] == "1.400x"
    assert rows["all six mixed"][2] == "1.250"  # mean id 2.5
    assert "x1 = 0.020 s" in out  # one mask update per timed chunk of 1000 optimizer steps


def test_pipeline_overhead_reports_training_step_over_bare_step(monkeypatch, capsys):
    mod = load("pipeline_overhead", monkeypatch)
    n = 3000
    out_s = {"bare": (0.3, 1.0), "+ target network (TD loss)": (0.45, 1.0),
             "training step (+ act, env step, replay write)": (0.75, 2.0),
             "training step, 4 runs vmapped (per run)": (0.25, 3.0), "evaluation (per call)": (0.5, 1.0)}
    agent = SimpleNamespace(eval_every=1000, eval_episodes=10)
    monkeypatch.setattr(mod, "measure", lambda hidden, args: (agent, dict(out_s), 123.0))
    ratio = mod.main(["--quick", "--steps", str(n), "--runs", "4", "--hidden", "8"])
    out = capsys.readouterr().out
    assert ratio == pytest.approx(2.5) and last_ratio(out) == pytest.approx(2.5)
    rows = {r[1]: r for r in table_rows(out)[1:]}
    assert rows["bare"][2] == "100.0" and rows["training step (+ act, env step, replay write)"][3] == "2.50x"
    amortised = next(r for name, r in rows.items() if name.startswith("evaluation / 1000 steps"))
    assert amortised[2] == "500.0" and amortised[3] == "+200% of a step"  # 0.5 s / 1000 vs 250 us


def test_scaling_reports_largest_over_one_run(monkeypatch, clock, capsys):
    mod = load("scaling", monkeypatch, clock)
    calls = []

    def fake_child(cmd, capture_output, text):
        R = int(cmd[cmd.index("--child") + 1])
        calls.append(R)
        clock.now += 1.0
        out = {"runs": R, "compile_s": 2.0, "chunk_s": 1.0, "steps_per_s": 1000.0 * R ** 0.5,
               "peak_rss_mib": 100.0 + R, "state_mib": 0.5 * R, "temp_mib": 1.0,
               "device_peak_mib": None, "device_limit_mib": None}
        return subprocess.CompletedProcess(cmd, 0, stdout="noise\n" + json.dumps(out) + "\n", stderr="")

    monkeypatch.setattr(mod, "subprocess", SimpleNamespace(run=fake_child))
    ratio = mod.main(["--quick", "--max-runs", "4", "--budget", "100"])
    out = capsys.readouterr().out
    assert calls == [1, 2, 4]
    assert ratio == pytest.approx(2.0) and last_ratio(out) == pytest.approx(2.0)
    rows = table_rows(out)[1:]
    assert [r[0] for r in rows] == ["1", "2", "4"] and rows[-1][4] == "2.00x" and rows[1][3] == "707"
    # the budget stops the doubling before it would be exceeded: after R=1 (1 s), R=2 would
    # take about 2.2 x 1 s more, past a 3 s budget
    calls.clear()
    assert mod.main(["--quick", "--max-runs", "8", "--budget", "3"]) == pytest.approx(1.0)
    assert calls == [1] and "stop: R=2 would exceed the 3 s budget" in capsys.readouterr().out
    # a child that fails stops the doubling
    monkeypatch.setattr(mod.subprocess, "run", lambda cmd, **k: (  # (mod.subprocess: the stand-in)
        fake_child(cmd, **k) if int(cmd[cmd.index("--child") + 1]) < 4
        else subprocess.CompletedProcess(cmd, 1, stdout="", stderr="out of memory")))
    assert mod.main(["--quick", "--max-runs", "8", "--budget", "100"]) == pytest.approx(2 ** 0.5)
    assert "stop: R=4 failed" in capsys.readouterr().out


def test_peer_rejax_reports_rejax_over_ours_smallest_over_buffers(monkeypatch, capsys):
    mod = load("peer_rejax", monkeypatch)
    times = {("ours", 50_000): [2.0, 1.5], ("rejax", 50_000): [9.0, 6.0],
             ("ours", 10_000): [1.0, 1.2], ("rejax", 10_000): [3.0, 4.0]}
    side = lambda name: lambda *a: (lambda s: {"compile_s": 5.0, "times": times[(name, s["buffer_size"])],  # noqa: E731
                                               "final_return": 42.0})(a[-1])
    monkeypatch.setattr(mod, "ensure_venv", lambda venv, spec, build=True: Path("/nonexistent/python"))
    monkeypatch.setattr(mod, "run_ours", side("ours"))
    monkeypatch.setattr(mod, "run_rejax", side("rejax"))
    ratio = mod.main(["--quick", "--seeds", "2", "--total-steps", "1000"])
    out = capsys.readouterr().out
    assert ratio == pytest.approx(3.0) and last_ratio(out) == pytest.approx(3.0)  # min(6/1.5, 3/1)
    rows = table_rows(out)[1:]
    assert [r[6] for r in rows] == ["", "4.00x", "", "3.00x"]
    assert rows[0][4] == "1,333"  # 2 seeds x 1000 steps / 1.5 s


@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_and_full_settings(name):
    mod = importlib.import_module(name)
    quick, full = mod.parse_args(["--quick"]), mod.parse_args([])
    assert quick.quick and not full.quick and quick.repeats >= 1 and full.repeats >= 1


def test_table():
    benchlib = importlib.import_module("benchlib")
    text = benchlib.table(["a", "bb"], [[1, 2.5], ["x", 12345.0]])
    lines = text.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert "12,345" in text


def test_profile_chunk_parses_and_summarises():
    mod = importlib.import_module("profile_chunk")
    quick, full = mod.parse_args(["--quick", "--out", "x"]), mod.parse_args([])
    assert quick.config.endswith("quickstart.yaml") and "chunk_evals=1" in quick.overrides
    assert full.overrides == [] and callable(mod.main)
    hlo = ("HloModule m\n\nENTRY %main (p: f32[2]) -> f32[2] {\n  %p = f32[2]{0} parameter(0)\n"
           "  %t = (f32[2]{0}, s32[]) tuple(%p, %c)\n  ROOT %a = f32[2]{0} add(%p, %p)\n}\n")
    assert mod.hlo_opcode_counts(hlo) == {"parameter": 1, "tuple": 1, "add": 1}
    text = mod.timeline_tables({("/device:GPU:0", "Stream #1"): {"fusion.1": [4, 3e6], "dot.2": [1, 1e6]},
                                ("/host:CPU", "python"): {"x": [1, 10.0]}}, top=5, show=1)
    assert "### /device:GPU:0 / Stream #1: 5 events, 4.00 ms" in text
    assert "| `fusion.1` | 4 | 3.000 | 750.0 | 75.0% |" in text and "python" not in text


def test_gpu_all_names_every_benchmark():
    script = BENCH / "gpu_all.sh"
    listed = subprocess.run(["bash", str(script), "--list"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert listed[:len(SCRIPTS)] and set(SCRIPTS) <= set(listed)
    helpers = {"benchlib", "rejax_side", "profile_chunk"}
    assert sorted(listed) == sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in helpers)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert subprocess.run(["bash", str(script), "--help"], capture_output=True).returncode == 0
    assert subprocess.run(["bash", str(script), "no-such-step"], capture_output=True).returncode == 2


def test_checkpoint_overlap_reports_saving_over_not_saving(monkeypatch, capsys, tmp_path):
    mod = load("checkpoint_overlap", monkeypatch)
    # saving after every chunk: 11 s and then 10.5 s (fastest kept); one save at the end: 10 s
    seconds = {1: [11.0, 10.5], 3: [10.0, 12.0]}
    calls = []

    def fake_sweep(config, out):
        every = config["checkpoint_every"]
        calls.append(every)
        assert config["total_steps"] == 3 * 100 and config["chunk_evals"] == 1
        return seconds[every].pop(0), 5.0, 2_000_000_000

    monkeypatch.setattr(mod, "timed_sweep", fake_sweep)
    ratio = mod.main(["--chunks", "3", "--eval-every", "100", "--runs", "5", "--repeats", "2",
                      "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert calls == [1, 3, 1, 3]  # round-robin
    assert ratio == pytest.approx(1.05) and last_ratio(out) == pytest.approx(1.05)
    rows = {r[0]: r for r in table_rows(out)[1:]}
    assert rows["save every chunk"][3] == "10.5" and rows["saves off (one at the end)"][3] == "10.0"
    assert rows["save every chunk"][4] == "142.9"  # 5 runs x 3 chunks x 100 steps / 10.5 s
    assert "state 2.00 GB" in out
