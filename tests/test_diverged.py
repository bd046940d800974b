"""A run whose parameters blow up is flagged (finite, diverged_step), carried across a resume,
counted in the summary, and leaves every other run bit-identical. (A run's bits can depend on
how many runs its program holds, docs/multi-device.md; in this DQN sweep,
2 runs vs 4, they do not, and this test keeps it so.)"""

import pandas as pd
import pytest

from conftest import tiny_sweep_config
from purejaxsparse import sweep
from purejaxsparse.analysis.report import summary_table
from purejaxsparse.config import load_config, plan_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

QUIET = dict(progress=False, log=lambda *_: None)


def test_a_diverging_run_is_flagged_and_the_others_are_unchanged(tmp_path):
    healthy = tiny_sweep_config(sweep={"seed": 1, "method": ["dense", "rigl"]})
    mixed = tiny_sweep_config(sweep={"seed": 1, "method": ["dense", "rigl"], "learning_rate": [1e-3, 1e30]})
    sweep.run_sweep(plan_sweep(healthy), tmp_path / "healthy", **QUIET)
    sweep.run_sweep(plan_sweep(mixed), tmp_path / "mixed", **QUIET)
    ok = pd.read_csv(tmp_path / "healthy" / "results.csv")
    res = pd.read_csv(tmp_path / "mixed" / "results.csv")
    runs = pd.read_csv(tmp_path / "mixed" / "runs.csv")
    blown = set(runs.loc[runs.learning_rate > 1, "run"])
    assert len(blown) == 2
    bad = res[res.run.isin(blown)]
    # the first update at lr 1e30 puts weights far above 1e8: flagged from the first evaluation
    assert not bad.finite.any() and (bad.diverged_step == 200).all()
    good = res[~res.run.isin(blown)]
    assert good.finite.all() and (good.diverged_step == -1).all()
    # the other runs are bit-identical to a sweep without the diverging ones (same text)
    cols = [c for c in ok.columns if c != "run"]
    assert good[cols].astype(str).reset_index(drop=True).equals(ok[cols].astype(str).reset_index(drop=True))
    # the summary printed at the end counts them
    assert "diverged runs: 2 of 4" in summary_table(tmp_path / "mixed")


def test_diverged_step_survives_a_resume(tmp_path):
    config = tiny_sweep_config(sweep={"seed": 1, "method": ["dense"], "learning_rate": [1e-3, 1e30]})
    plan = plan_sweep(config)
    sweep.run_sweep(plan, tmp_path / "full", **QUIET)
    out = tmp_path / "cut"
    sweep.run_sweep(plan, out, max_chunks=1, **QUIET)
    sweep.run_sweep(plan_sweep(load_config(out / "config.yaml")), out, resume=True, **QUIET)
    assert (out / "results.csv").read_text() == (tmp_path / "full" / "results.csv").read_text()
    res = pd.read_csv(out / "results.csv")
    assert set(res.loc[~res.finite, "diverged_step"]) == {200}
