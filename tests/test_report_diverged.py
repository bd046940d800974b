"""Diverged runs (results.csv's finite/diverged_step columns) on the reading side: listed,
counted in every statistic at the returns they measured, and older sweeps without the columns
reported as before."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats

from purejaxsparse import results as results_io
from purejaxsparse.analysis import report, stats
from purejaxsparse.results import diverged_runs

DIVERGED_RESULTS = """\
run,env,agent,method,sparsity,seed,step,eval_return,actual_sparsity,active_params,dormant_frac,finite,diverged_step
0,CartPole-v1,dqn,dense,0.0,0,1000,10.0,0.0,100,0.1,True,-1
0,CartPole-v1,dqn,dense,0.0,0,2000,20.0,0.0,100,0.1,True,-1
0,CartPole-v1,dqn,dense,0.0,0,3000,30.0,0.0,100,0.1,True,-1
1,CartPole-v1,dqn,dense,0.0,1,1000,11.0,0.0,100,0.1,True,-1
1,CartPole-v1,dqn,dense,0.0,1,2000,21.0,0.0,100,0.1,True,-1
1,CartPole-v1,dqn,dense,0.0,1,3000,31.0,0.0,100,0.1,True,-1
2,CartPole-v1,dqn,dense,0.0,2,1000,12.0,0.0,100,0.1,True,-1
2,CartPole-v1,dqn,dense,0.0,2,2000,22.0,0.0,100,0.1,True,-1
2,CartPole-v1,dqn,dense,0.0,2,3000,32.0,0.0,100,0.1,True,-1
3,CartPole-v1,dqn,rigl,0.9,0,1000,5.0,0.9,10,0.2,True,-1
3,CartPole-v1,dqn,rigl,0.9,0,2000,15.0,0.9,10,0.2,True,-1
3,CartPole-v1,dqn,rigl,0.9,0,3000,25.0,0.9,10,0.2,True,-1
4,CartPole-v1,dqn,rigl,0.9,1,1000,6.0,0.9,10,0.2,True,-1
4,CartPole-v1,dqn,rigl,0.9,1,2000,,0.9,10,,False,1500
4,CartPole-v1,dqn,rigl,0.9,1,3000,9.0,0.9,10,,False,1500
5,CartPole-v1,dqn,rigl,0.9,2,1000,7.0,0.9,10,0.2,True,-1
5,CartPole-v1,dqn,rigl,0.9,2,2000,17.0,0.9,10,0.2,True,-1
5,CartPole-v1,dqn,rigl,0.9,2,3000,27.0,0.9,10,0.2,True,-1
"""


def write_diverged_sweep(d: Path, with_columns: bool = True) -> Path:
    """A hand-written sweep of 6 runs in which run 4 (rigl, seed 1) diverged at step 1500."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"agent": "dqn", "env": "CartPole-v1", "total_steps": 3000,
                                                   "eval_every": 1000, "sweep": {"seed": 3, "method": ["dense", "rigl"]}}))
    (d / "runs.csv").write_text("run,env,agent,method,sparsity,seed,use_bias,total_params,active_params\n" + "".join(
        f"{r},CartPole-v1,dqn,{m},{s},{r % 3},True,100,{a}\n"
        for r, (m, s, a) in enumerate([("dense", 0.0, 100)] * 3 + [("rigl", 0.9, 10)] * 3)))
    text = DIVERGED_RESULTS
    if not with_columns:  # an older sweep: no finite/diverged_step columns
        text = "\n".join(line.rsplit(",", 2)[0] for line in text.strip().splitlines()) + "\n"
    (d / "results.csv").write_text(text)
    return d


def test_diverged_runs_are_listed_and_counted(tmp_path):
    d = write_diverged_sweep(tmp_path / "new")
    config, runs, results = report.load_sweep(d)
    assert len(results) == 18  # the diverged run's NaN return is kept (flagged), not dropped as malformed
    div = diverged_runs(results)
    assert div.to_dict("records") == [dict(run=4, env="CartPole-v1", agent="dqn", method="rigl", sparsity=0.9,
                                           seed=1, diverged_step=1500, first_eval_step=2000)]
    # either column alone flags it (finite alone: the step is unknown, -1)
    assert diverged_runs(results.drop(columns="diverged_step"))[["run", "diverged_step"]].values.tolist() == [[4, -1]]
    assert diverged_runs(results.drop(columns="finite"))[["run", "diverged_step"]].values.tolist() == [[4, 1500]]
    summ = stats.summarize(results, runs, config, reps=200).set_index("method")
    # final score = the last evaluation (3 evals: k = 1): rigl runs 3, 4 (diverged), 5 score 25, 9, 27
    rigl = [25.0, 9.0, 27.0]
    assert summ.loc["rigl", "iqm"] == pytest.approx(scipy_stats.trim_mean(rigl, 0.25))  # 20.33, not 26 without run 4
    assert summ.loc["rigl", "mean"] == pytest.approx(np.mean(rigl))
    assert summ.loc["rigl", "std"] == pytest.approx(np.std(rigl, ddof=1))
    assert (summ.loc["rigl", "n_scored"], summ.loc["rigl", "n_diverged"], summ.loc["rigl", "n_runs"]) == (3, 1, 3)
    assert summ.loc["rigl", "check"] == "1 diverged" and summ.loc["dense", "check"] == ""
    page = report.write_report(d, reps=200).read_text()
    box = page.index("class='warning'")
    assert box < page.index("<h2>Figures") and "1 of 6 runs diverged" in page
    assert "<td>1500</td>" in page[box: page.index("</div>", box)]
    assert "count in every statistic" in page and "left out" not in page
    assert "<td>1 diverged</td>" in page  # the group is marked in the summary table
    fs = pd.read_csv(d / "report" / "final_scores.csv").set_index("run")
    assert bool(fs.loc[4, "diverged"]) and fs.loc[4, "final_score"] == 9.0  # kept, flagged
    table = report.summary_table(d)
    assert table.splitlines()[-1] == "diverged runs: 1 of 6"
    rigl_line = next(line for line in table.splitlines() if line.split()[:1] == ["rigl"])
    # runs, mean, std, actual sparsity, diverged, incomplete, the mark
    assert rigl_line.split()[2:] == ["3", f"{np.mean(rigl):.3f}", f"{np.std(rigl, ddof=1):.3f}", "0.900", "1", "0", "!"]


def _group_sweep(d: Path, dense: list[float], rigl: list[float], diverged: set[int], missing: set[int] = frozenset()):
    """Runs 0.. dense then rigl, each with one evaluation whose return is its score; `diverged`
    runs are flagged from that evaluation; `missing` runs have no evaluation yet."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"agent": "dqn", "env": "CartPole-v1", "total_steps": 1000,
                                                   "eval_every": 1000}))
    methods = [("dense", 0.0)] * len(dense) + [("rigl", 0.9)] * len(rigl)
    (d / "runs.csv").write_text("run,env,agent,method,sparsity,seed,total_params,active_params\n" + "".join(
        f"{r},CartPole-v1,dqn,{m},{s},{r},100,{100 if m == 'dense' else 10}\n" for r, (m, s) in enumerate(methods)))
    lines = ["run,env,agent,method,sparsity,seed,step,eval_return,actual_sparsity,active_params,dormant_frac,finite,"
             "diverged_step"]
    for r, ((m, s), score) in enumerate(zip(methods, dense + rigl)):
        if r not in missing:
            bad = r in diverged
            lines.append(f"{r},CartPole-v1,dqn,{m},{s},{r},1000,{score},{s},{100 if m == 'dense' else 10},0.1,"
                         f"{not bad},{500 if bad else -1}")
    (d / "results.csv").write_text("\n".join(lines) + "\n")
    return d


def test_every_run_counts_in_iqm_ci_mean_and_the_dense_reference(tmp_path):
    """A method that diverges in one of 4 seeds is scored on all 4: here its IQM is 9.75 with the
    diverged run (what scipy's trim_mean gives) and would be 41.7 without it (the 3 others)."""
    dense, rigl = [100.0, 110.0, 120.0, 10.0], [9.5, 10.0, 105.5, -200.0]
    d = _group_sweep(tmp_path / "s", dense, rigl, diverged={3, 7})
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=500).set_index("method")
    assert scipy_stats.trim_mean(rigl, 0.25) == pytest.approx(9.75)
    assert scipy_stats.trim_mean(rigl[:3], 0.25) == pytest.approx(125 / 3)  # 41.7: what leaving it out gave
    assert summ.loc["rigl", "iqm"] == pytest.approx(scipy_stats.trim_mean(rigl, 0.25))
    assert summ.loc["rigl", "mean"] == pytest.approx(np.mean(rigl))
    assert summ.loc["dense", "dense_reference"] == pytest.approx(np.mean(dense))  # 85, not 110
    assert summ.loc["rigl", "norm_iqm"] == pytest.approx(9.75 / np.mean(dense))
    assert summ.loc["rigl", "norm_mean"] == pytest.approx(np.mean(rigl) / np.mean(dense))
    # the interval is resampled from all 4 scores: it reaches the diverged run's -200 side
    assert summ.loc["rigl", "ci_low"] < 9.5 and summ.loc["rigl", "ci_low"] <= 9.75 <= summ.loc["rigl", "ci_high"]
    assert summ.loc["rigl", "ci_high"] <= 105.5
    assert (summ.loc["rigl", "n_scored"], summ.loc["rigl", "n_diverged"]) == (4, 1)
    fs = stats.normalize_scores(stats.final_scores(results, runs))
    assert fs["normalized_score"].to_numpy() == pytest.approx(np.array(dense + rigl) / np.mean(dense))


def test_incomplete_runs_are_counted_and_marked(tmp_path):
    """A run without every evaluation is scored on what it has and counted as incomplete; a run
    without any evaluation has no score to count."""
    d = _group_sweep(tmp_path / "s", [100.0, 110.0], [9.5, 10.0, 105.5, -200.0], diverged=set(), missing={3})
    config, runs, results = report.load_sweep(d)
    config["total_steps"] = 2000  # every run has 1 of 2 evaluations
    summ = stats.summarize(results, runs, config, reps=200).set_index("method")
    assert (summ.loc["rigl", "n_runs"], summ.loc["rigl", "n_scored"], summ.loc["rigl", "n_incomplete"]) == (4, 3, 4)
    assert summ.loc["rigl", "iqm"] == pytest.approx(scipy_stats.trim_mean([9.5, 105.5, -200.0], 0.25))
    assert summ.loc["rigl", "check"] == "4 incomplete" and summ.loc["dense", "check"] == "2 incomplete"
def test_sweeps_without_divergence_columns_report_as_before(tmp_path):
    d = write_diverged_sweep(tmp_path / "old", with_columns=False)
    config, runs, results = report.load_sweep(d)
    assert len(results) == 17  # the row without a return is malformed here
    assert diverged_runs(results).empty
    summ = stats.summarize(results, runs, config, reps=200).set_index("method")
    assert summ.loc["rigl", "iqm"] == pytest.approx((25 + 9 + 27) / 3) and summ.loc["rigl", "n_diverged"] == 0
    page = report.write_report(d, reps=200).read_text()
    assert "class='warning'" not in page and "does not record divergence" in page
    assert report.summary_table(d).splitlines()[-1].startswith("diverged runs: not recorded")


def test_finite_column_round_trips_through_the_writer(tmp_path):
    """The engine's writer (results.py) and reader agree on booleans and integers."""
    metrics = {"step": np.array([[1000, 2000]]), "eval_return": np.array([[1.5, np.nan]], np.float32),
               "finite": np.array([[True, False]]), "diverged_step": np.array([[-1, 1500]], np.int32)}
    names = ["eval_return", "finite", "diverged_step"]
    rows = results_io.result_rows([{"run": 0, "method": "set", "sparsity": 0.5, "seed": 0}], "CartPole-v1", "dqn",
                                  metrics, names)
    results_io.write_csv(tmp_path / "results.csv", results_io.result_header(names), rows)
    text = (tmp_path / "results.csv").read_text().splitlines()
    assert text[1].endswith(",1.5,True,-1") and text[2].endswith(",nan,False,1500")
    back = results_io.read_results(tmp_path)
    assert list(back["finite"]) == [True, False] and list(back["diverged_step"]) == [-1, 1500]
    assert diverged_runs(back)[["run", "diverged_step", "first_eval_step"]].values.tolist() == [[0, 1500, 2000]]
