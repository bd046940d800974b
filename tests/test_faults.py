"""Faults a sweep meets on a cluster: bad options or YAML. Each ends in one line (exit 2, nothing
changed); never in a traceback."""

import time
from pathlib import Path

import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse import sweep
from purejaxsparse.cli import main
from purejaxsparse.config import plan_sweep

CONFIG = tiny_sweep_config(total_steps=1600, chunk_evals=1, sweep={"seed": 1, "method": ["dense", "set"]})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(directory of an uninterrupted sweep of CONFIG, CONFIG as a YAML file)."""
    root = tmp_path_factory.mktemp("faults")
    path = root / "c.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))  # sweep key order = run order
    sweep.run_sweep(plan_sweep(CONFIG), root / "ref", progress=False, log=lambda *_: None)
    return root / "ref", path


def files(directory: Path) -> dict:
    """Every file of a sweep directory, by relative path: its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


BAD = [  # (argv after the command, the flag or field the one line must name)
    (["report", "{ref}", "--reps", "-5"], "--reps"),
    (["report", "{ref}", "--reps", "nan"], "--reps"),
    (["report", "{ref}", "--seed", "-1"], "--seed"),
    (["report", "{ref}", "--seed", "1e20"], "--seed"),
    (["robustness", "{ref}", "--sigma", "nan"], "--sigma"),
    (["robustness", "{ref}", "--sigma", "0,-0.1"], "--sigma"),
    (["robustness", "{ref}", "--sigma", "inf"], "--sigma"),
    (["robustness", "{ref}", "--sigma", ","], "--sigma"),
    (["robustness", "{ref}", "--episodes", "0"], "--episodes"),
    (["robustness", "{ref}", "--episodes", "2.5"], "--episodes"),
    (["export", "{ref}", "--run", "0.5", "--out", "{tmp}/p.npz"], "--run"),
    (["export", "{ref}", "--run", "nan", "--out", "{tmp}/p.npz"], "--run"),
    (["export", "{ref}", "--run", "0", "--out", "{tmp}/p.npz", "--csr-max-density", "nan"], "--csr-max-density"),
    (["export", "{ref}", "--run", "0", "--out", "{tmp}/p.npz", "--csr-max-density", "-0.1"], "--csr-max-density"),
    (["run", "{cfg}", "--out", "{tmp}/o", "--device-memory", "1e400GB"], "--device-memory"),
    (["run", "{cfg}", "--out", "{tmp}/o", "--device-memory=-8GB"], "--device-memory"),
    (["run", "{cfg}", "--out", "{tmp}/o", "hparams.update_interval=10000000000"], "hparams.update_interval"),
    (["run", "{cfg}", "--out", "{tmp}/o", "total_steps=10000000000000"], "total_steps"),
    (["run", "{cfg}", "--out", "{tmp}/o", "agent_config.hidden=[10000000000]"], "agent_config.hidden"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep.seed=[0,5000000000]"], "sweep.seed"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep.seed=100000", "sweep.sparsity=[0.5,0.6,0.7,0.8,0.9]"],
     "1,000,000 combinations"),
    (["run", "{dup}", "--out", "{tmp}/o"], "line 6: duplicate key 'total_steps'"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep={{seed: 1, seed: 2}}"], "sweep"),
]


@pytest.mark.parametrize("argv, field", BAD, ids=[" ".join(a[:1] + a[2:]) for a, _ in BAD])
def test_bad_options_and_yaml_are_one_line(finished, tmp_path, capsys, argv, field):
    ref, path = finished
    dup = tmp_path / "dup.yaml"
    dup.write_text("agent: dqn\nenv: CartPole-v1\ntotal_steps: 1000\neval_every: 100\neval_episodes: 2\n"
                   "total_steps: 2000\nsweep: {seed: 1}\n")
    before = files(ref)
    t0 = time.perf_counter()
    code = main([a.format(ref=ref, tmp=tmp_path, cfg=path, dup=dup) for a in argv])
    err = one_line(capsys.readouterr().err)
    assert code == 2 and field in err, err
    assert time.perf_counter() - t0 < 20  # a grid is counted, not expanded
    assert files(ref) == before and not (tmp_path / "o").exists() and not (tmp_path / "p.npz").exists()
