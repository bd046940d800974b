"""Smoke test of the benchmark scripts: they import and parse their --quick and full settings.

Nothing is timed or run here (the benchmarks themselves are run by hand; see BENCHMARKS.md).
"""

import importlib
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = ("sweep_vs_serial", "sparse_overhead", "pipeline_overhead", "peer_rejax", "scaling")


@pytest.fixture(scope="module", autouse=True)
def on_path():
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_parses_quick_and_full(name):
    mod = importlib.import_module(name)
    quick, full = mod.parse_args(["--quick"]), mod.parse_args([])
    assert quick.quick and not full.quick
    assert quick.repeats >= 1 and full.repeats >= 1
    assert "ratio: X" in mod.__doc__ and "--quick" in mod.__doc__
    assert callable(mod.main)


def test_quick_sizes():
    sweep_vs_serial = importlib.import_module("sweep_vs_serial")
    assert sweep_vs_serial.parse_args(["--quick"]).runs == 16
    assert sweep_vs_serial.parse_args([]).runs == 256
    assert 100_000 in sweep_vs_serial.parse_args(["--quick"]).buffer_sizes
    sparse = importlib.import_module("sparse_overhead")
    assert sparse.parse_args(["--quick"]).update_interval == 1000


def test_rejax_side_compiles_without_rejax():
    py_compile.compile(str(BENCH / "rejax_side.py"), doraise=True)


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
