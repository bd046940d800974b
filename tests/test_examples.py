"""The examples run end to end (smoke size) as a user runs them: a script in a fresh process."""

import math
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_custom_method_example(tmp_path):
    """examples/custom_method.py registers GraNet and runs it beside RigL: both methods' final
    returns are printed, and finite."""
    done = subprocess.run([sys.executable, str(EXAMPLES / "custom_method.py"), "--smoke", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = dict(re.findall(r"^\s+(rigl|granet)\s+(\S+)$", done.stdout, re.MULTILINE))
    assert set(scores) == {"rigl", "granet"}, done.stdout[-2000:]
    assert all(math.isfinite(float(v)) for v in scores.values()), scores
    assert (tmp_path / "out" / "results.csv").is_file()
