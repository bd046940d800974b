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


def test_optax_loop_example_keeps_masked_weights_zero(tmp_path):
    """examples/optax_loop.py: the sparse transform in a user's optax loop trains (the loss falls)
    at the target sparsity, and no masked weight is nonzero."""
    done = subprocess.run([sys.executable, str(EXAMPLES / "optax_loop.py"), "--steps", "120"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    losses = [float(v) for v in re.findall(r"^step\s+\d+\s+loss (\S+)$", done.stdout, re.MULTILINE)]
    assert len(losses) >= 3 and losses[-1] < 0.2 * losses[0], done.stdout
    assert "optimizer steps: 120\n" in done.stdout
    active, target = map(float, re.search(r"all kernels: (\S+) active \(target (\S+)\)", done.stdout).groups())
    assert abs(active - target) < 0.002, done.stdout
    assert done.stdout.rstrip().endswith("masked weights that are nonzero: 0")


def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def test_python_blocks_finds_each_block():
    text = "x\n```python\na = 1\n```\n```bash\nb\n```\n```python\nprint(2)\n```\n"
    assert python_blocks(text) == ["a = 1\n", "print(2)\n"]


def test_every_python_block_of_the_readme_runs_as_written(tmp_path):
    """Each python block of README.md runs in a fresh process, and what it says it prints
    (a trailing `# ...` comment on a print line) is what it prints."""
    blocks = python_blocks((EXAMPLES.parent / "README.md").read_text())
    assert len(blocks) >= 2
    for block in blocks:
        done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, f"{block}\n{done.stderr[-2000:]}"
        said = [line.split("# ", 1)[1].split(":")[0].strip() for line in block.splitlines()
                if line.startswith("print(") and "# " in line]
        for expected, printed in zip(said, done.stdout.splitlines()):
            assert printed == expected, (block, done.stdout)
