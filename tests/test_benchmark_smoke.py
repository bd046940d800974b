"""Every benchmark script runs end to end at its --smoke size.

tests/test_benchmarks.py checks the scripts' arithmetic with stand-in timings; this file runs
their real code (package calls, compiles, timings) at the tiniest sizes, so a change of the
package's API that breaks a script fails here. --quick and full mode run the same code with
larger numbers. Each script runs in this process through its `main(argv)` (JAX is imported
once), one test per script, and must end with a `ratio:` line holding a finite number.
"""

import importlib
import math
import os
import py_compile
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"benchlib", "rejax_side"}  # imported or run by the scripts, not scripts themselves
SCRIPTS = ("sweep_vs_serial", "sparse_overhead", "pipeline_overhead", "scaling", "peer_rejax",
           "checkpoint_overlap", "atari_throughput", "export_latency", "profile_chunk")


@pytest.fixture(scope="module", autouse=True)
def on_path():
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


@pytest.fixture
def environ():
    """os.environ as it was before the test (export_latency sets JAX_PLATFORMS for itself)."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


def ratio_of(out: str) -> float:
    """The number on the script's last line, which must be its `ratio:` line."""
    last = out.strip().splitlines()[-1]
    assert last.startswith("ratio: "), f"last line is not the ratio line: {last!r}"
    assert "(smoke: sizes too small to mean anything)" in last
    return float(last.split()[1])


def test_every_script_has_a_smoke_test():
    scripts = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_smoke_run(name, capsys, tmp_path, environ):
    argv = ["--smoke"] + (["--out", str(tmp_path)] if name == "profile_chunk" else [])
    importlib.import_module(name).main(argv)
    out = capsys.readouterr().out
    ratio = ratio_of(out)
    if name == "peer_rejax" and "# rejax side skipped" in out:
        # no rejax venv here: our side ran (its row is in the table), the rejax side did not
        assert "| purejaxsparse (this repo) |" in out and math.isnan(ratio)
        py_compile.compile(str(BENCH / "rejax_side.py"), doraise=True, cfile=str(tmp_path / "rejax_side.pyc"))
        return
    assert math.isfinite(ratio), out
    if name == "profile_chunk":
        assert {"profile_chunk.txt", "chunk_hlo.txt"} <= {p.name for p in tmp_path.iterdir()}
