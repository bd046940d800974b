"""The supported JAX range and the two CI legs (README blocks that .ci/run runs verbatim)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jaxlib

ROOT = Path(__file__).resolve().parents[1]
PIN = ">=0.10.2,<0.12"


def ci_legs() -> list[tuple[str, str, str]]:
    """(marker, venv, command) of each leg, as `.ci/run --dry-run` prints them."""
    out = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--dry-run"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    legs = []
    for head, cmd in zip(out[::2], out[1::2]):
        word, marker, venv = head.split()
        assert word == "leg"
        legs.append((marker, venv, cmd))
    return legs


def test_ci_runs_both_readme_blocks():
    legs = ci_legs()
    assert [(m, v) for m, v, _ in legs] == [("test-command", ".venv"), ("test-command-py312", ".venv312")]
    readme = (ROOT / "README.md").read_text()
    for marker, _, cmd in legs:  # verbatim: the line after the marker's ```bash fence
        assert f"<!-- {marker} -->\n```bash\n{cmd}\n```" in readme
    (_, _, py311), (_, _, py312) = legs
    assert py311.startswith("python3 -m venv .venv && ")
    # the 3.12 leg is the same procedure with another interpreter and venv
    prefix, rest = py312.split(" && ", 1)
    assert prefix.startswith("PY312=$(") and "python3.12" in prefix
    assert rest.replace('"$PY312"', "python3").replace(".venv312", ".venv") == py311
    assert py311.endswith("python -m pytest -q -n 2")


def _satisfies(version: str, spec: str) -> bool:
    """version against '>=a,<b' (the only form the pins use)."""
    v = tuple(int(x) for x in re.findall(r"\d+", version)[:3])
    lo, hi = re.fullmatch(r">=([\d.]+),<([\d.]+)", spec).groups()
    as_tuple = lambda s: tuple(int(x) for x in s.split("."))  # noqa: E731
    return as_tuple(lo) <= v < as_tuple(hi)


def test_jax_pin_and_installed_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {re.match(r"[\w-]+", d).group(0): d[len(re.match(r"[\w-]+", d).group(0)):] for d in deps}
    assert pins["jax"] == PIN and pins["jaxlib"] == PIN
    assert f"`jax{PIN}`" in (ROOT / "README.md").read_text()
    assert _satisfies(jax.__version__, PIN) and _satisfies(jaxlib.__version__, PIN)
    assert not _satisfies("0.12.0", PIN) and not _satisfies("0.10.1", PIN) and _satisfies("0.11.2", PIN)
    if sys.version_info < (3, 12):  # jax 0.11 needs Python 3.12: 3.11 gets 0.10.x
        assert jax.__version__.startswith("0.10.")
