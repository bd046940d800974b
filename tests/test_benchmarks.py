"""Smoke test of the benchmark scripts: they import and parse their --quick and full settings.

Nothing is timed or run here (the benchmarks themselves are run by hand; see BENCHMARKS.md).
"""

import importlib
import py_compile
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
