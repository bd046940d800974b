"""Tests of purejaxsparse.analysis on synthetic sweep directories (no jax, no training)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from conftest import write_sweep
from purejaxsparse.analysis import plots, report, stats

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def assert_png(path) -> None:
    assert path is not None, "plot was skipped"
    p = Path(path)
    data = p.read_bytes()
    assert data[:8] == PNG_SIGNATURE and p.stat().st_size > 1000


# ------------------------------------------------------------------------ scores
def test_final_score_windows(tmp_path):
    # run 0: 20 evals -> last 2; run 1: 5 evals -> last 1; run 2: 30 evals -> last 3; run 3: none
    returns = {0: np.arange(20.0), 1: np.arange(5.0) * 10, 2: np.arange(30.0), 3: np.arange(30.0)}
    d = write_sweep(tmp_path, methods=("dense",), seeds=4, total_steps=30_000, eval_every=1000,
                    n_evals={0: 20, 1: 5, 2: 30, 3: 0}, returns=returns)
    config, runs, results = report.load_sweep(d)
    fs = stats.final_scores(results, runs, n_expected=stats.expected_evals(config)).set_index("run")
    assert fs.loc[0, "k"] == 2 and fs.loc[0, "final_score"] == pytest.approx((18 + 19) / 2)
    assert fs.loc[1, "k"] == 1 and fs.loc[1, "final_score"] == pytest.approx(40.0)
    assert fs.loc[2, "k"] == 3 and fs.loc[2, "final_score"] == pytest.approx(28.0)
    assert fs.loc[3, "n_evals"] == 0 and np.isnan(fs.loc[3, "final_score"])
    assert list(fs["complete"]) == [False, False, True, False]
    assert fs.loc[0, "last_step"] == 20_000
    # frac is a parameter: 50% of 20 -> last 10
    fs5 = stats.final_scores(results, runs, frac=0.5).set_index("run")
    assert fs5.loc[0, "k"] == 10 and fs5.loc[0, "final_score"] == pytest.approx(np.mean(np.arange(10, 20)))


def test_iqm_matches_trim_mean_and_hand_value(tmp_path):
    d = write_sweep(tmp_path / "a", methods=("dense", "rigl"), sparsities=(0.9,), seeds=8)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    fs = stats.final_scores(results, runs)
    for _, row in summ.iterrows():
        x = fs[(fs.method == row.method) & (fs.sparsity == row.sparsity)]["final_score"].to_numpy()
        assert len(x) == 8
        assert row["iqm"] == pytest.approx(sps.trim_mean(x, 0.25))
        assert row["mean"] == pytest.approx(x.mean())
    # hand-computed: constant returns per run -> scores 1,2,3,4,100,200,300,400; IQM = mean(3,4,100,200)
    vals = [1, 2, 3, 4, 100, 200, 300, 400]
    d = write_sweep(tmp_path / "b", methods=("dense",), seeds=8, returns={i: [v] * 20 for i, v in enumerate(vals)})
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    assert summ.loc[0, "iqm"] == pytest.approx(76.75)
    assert stats.iqm(vals) == pytest.approx(76.75)


def test_ci_brackets_reproducible_and_leaves_global_rng(tmp_path):
    d = write_sweep(tmp_path, methods=("dense", "static", "rigl"), sparsities=(0.5, 0.9), seeds=6)
    config, runs, results = report.load_sweep(d)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = stats.summarize(results, runs, config, reps=200, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)
    b = stats.summarize(results, runs, config, reps=200, seed=0)
    c = stats.summarize(results, runs, config, reps=200, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    assert (a["ci_low"] <= a["iqm"] + 1e-9).all() and (a["iqm"] <= a["ci_high"] + 1e-9).all()
    assert (a["ci_high"] > a["ci_low"]).all()
    assert set(a["n_runs"]) == {6} and set(a["n_complete"]) == {6}


def numpy_stratified_bootstrap(tasks, reps, size, rs):
    """Independent re-implementation of rliable's stratified bootstrap percentile CI of the IQM
    (the same draws from a RandomState seeded like the global RNG rliable uses)."""
    alpha = (1 - size) / 2
    vals = np.empty(reps)
    if len({t.size for t in tasks}) == 1:  # StratifiedBootstrap on an (n x T) matrix
        mat = np.stack(tasks, axis=1)
        n, T = mat.shape
        idx = rs.choice(n, (reps, n, T), replace=True)
        res = mat[idx, np.arange(T)[None, None, :]].reshape(reps, n * T)
        vals = np.array([sps.trim_mean(r, 0.25) for r in res])
    else:  # StratifiedIndependentBootstrap: each task resampled on its own
        for r in range(reps):
            vals[r] = sps.trim_mean(
                np.concatenate([t[rs.choice(t.size, (t.size, 1), replace=True)].ravel() for t in tasks]), 0.25)
    return tuple(np.percentile(vals, [100 * alpha, 100 * (1 - alpha)]))


def test_bootstrap_ci_matches_independent_numpy_bootstrap():
    x = np.random.default_rng(1).normal(size=10)
    ragged = [np.arange(5.0), np.arange(7.0) * 2, np.arange(3.0) + 1]
    for data, tasks in ((x, [x]), (ragged, ragged)):
        point, lo, hi = stats.iqm_ci(data, reps=300, seed=7)
        lo2, hi2 = numpy_stratified_bootstrap(tasks, 300, 0.95, np.random.RandomState(7))
        assert (lo, hi) == pytest.approx((lo2, hi2))
        assert lo <= point <= hi


def test_single_run_group_has_degenerate_ci(tmp_path):
    d = write_sweep(tmp_path, methods=("dense", "rigl"), sparsities=(0.9,), seeds=1)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    assert (summ["ci_low"] == summ["iqm"]).all() and (summ["ci_high"] == summ["iqm"]).all()
    assert summ["ci_note"].str.contains("single run").all()


def test_group_columns_include_swept_use_bias(tmp_path):
    d = write_sweep(tmp_path, methods=("dense", "rigl"), sparsities=(0.8, 0.98), seeds=2, use_bias=(True, False))
    config, runs, results = report.load_sweep(d)
    assert stats.group_columns(runs) == ["env", "agent", "method", "sparsity", "use_bias"]
    summ = stats.summarize(results, runs, config, reps=200)
    assert len(summ) == 2 + 2 * 2  # dense x bias + rigl x 2 sparsities x bias
    assert set(summ["use_bias"]) == {True, False}
    # drop_fraction is in runs.csv but not swept: not a group column
    assert "drop_fraction" not in stats.group_columns(runs)


def test_normalised_scores(tmp_path):
    d = write_sweep(tmp_path, envs=("CartPole-v1", "Acrobot-v1"), methods=("dense", "rigl"), seeds=4)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    dense = summ[summ.method == "dense"]
    assert np.allclose(dense["norm_mean"], 1.0)
    fs = stats.normalize_scores(stats.final_scores(results, runs))
    for env, g in fs.groupby("env"):
        assert g.loc[g.method == "dense", "normalized_score"].mean() == pytest.approx(1.0)
        ref = g.loc[g.method == "dense", "final_score"].mean()
        assert np.allclose(g["normalized_score"], g["final_score"] / ref)
    # a non-positive dense mean cannot normalise: NaN, not a sign-flipped ratio
    neg = fs.assign(final_score=-fs["final_score"])
    assert stats.normalize_scores(neg)["normalized_score"].isna().all()


def test_wide_runs_are_normalised_by_the_dense_network_of_their_width(tmp_path):
    d = write_sweep(tmp_path, envs=("CartPole-v1",), methods=("dense", "rigl"), seeds=4)
    config, runs, results = report.load_sweep(d)
    fs = stats.final_scores(results, runs)
    narrow = fs.assign(width=1.0)
    wide = fs.assign(width=3.0, final_score=3 * fs["final_score"] + 7, run=fs["run"] + len(fs))
    out = stats.normalize_scores(pd.concat([narrow, wide], ignore_index=True))
    for width, part in ((1.0, narrow), (3.0, wide)):
        ref = part.loc[part.method == "dense", "final_score"].to_numpy().mean()
        got = out[out.width == width]
        np.testing.assert_allclose(got["normalized_score"], part["final_score"].to_numpy() / ref)


# --------------------------------------------------------------- partial / robust
def test_partial_sweep_and_truncated_line(tmp_path):
    n_evals = {0: 10, 3: 0, 5: 17}
    d = write_sweep(tmp_path, methods=("dense", "rigl"), sparsities=(0.9,), seeds=4, n_evals=n_evals,
                    trailing="7,CartPole-v1,dqn,rigl,0.9,3,21000,12")  # partial line, no newline
    config, runs, results = report.load_sweep(d)
    assert len(results) == 8 * 20 - 10 - 20 - 3
    summ = stats.summarize(results, runs, config, reps=200).set_index("method")
    assert summ.loc["dense", "n_runs"] == 4 and summ.loc["dense", "n_complete"] == 2
    assert summ.loc["dense", "n_scored"] == 3
    assert summ.loc["rigl", "n_complete"] == 3
    assert summ.loc["dense", "final_step_min"] == 10_000 and summ.loc["dense", "final_step_max"] == 20_000
    comp = report.completeness(results, runs, config)
    assert (comp["evals_done"], comp["evals_expected"], comp["runs_complete"]) == (127, 160, 5)
    index = report.write_report(d, reps=200)
    page = index.read_text()
    assert "127/160 evaluations, 5/8 runs complete; sweep still running or interrupted" in page


def test_complete_sweep_says_complete_and_duplicates_last_wins(tmp_path):
    d = write_sweep(tmp_path, methods=("dense",), seeds=2, returns={0: np.zeros(20), 1: np.ones(20)})
    with open(d / "results.csv", "a") as f:  # a resumed sweep re-appended run 0's last evaluation
        f.write("0,CartPole-v1,dqn,dense,0.0,0,20000,50.0,0.0,136706,0.1\n")
    config, runs, results = report.load_sweep(d)
    assert len(results) == 40
    fs = stats.final_scores(results, runs).set_index("run")
    assert fs.loc[0, "final_score"] == pytest.approx(25.0)  # mean(0, 50)
    page = report.write_report(d, reps=200).read_text()
    assert "40/40 evaluations, 2/2 runs complete; sweep complete" in page


# ------------------------------------------------------------------------ plots
def test_report_writes_every_plot_as_png(tmp_path):
    d = write_sweep(tmp_path, envs=("CartPole-v1", "Acrobot-v1"),
                    methods=("dense", "dense_width", "static", "set", "rigl", "prune"),
                    sparsities=(0.8, 0.9, 0.98), seeds=3, use_bias=(True, False))
    runs = pd.read_csv(d / "runs.csv")
    rob = pd.DataFrame([dict(run=r, sigma=s, eval_return=400 - s * 5 * (1 + sp))
                        for r, sp in zip(runs.run, runs.sparsity) for s in (0.0, 0.1, 0.2, 0.5)])
    (d / "report").mkdir()
    rob.to_csv(d / "report" / "robustness.csv", index=False)
    res = pd.read_csv(d / "results.csv")
    res.assign(grad_snr=1.0 / (1 + res["step"] / 1000)).to_csv(d / "results.csv", index=False)
    index = report.write_report(d, reps=200)
    rep = d / "report"
    names = ["score_vs_sparsity.png", "score_vs_params.png", "iqm_bars.png", "learning_curves.png", "dormant.png",
             "robustness.png", "grad_snr.png"]
    for name in names:
        assert_png(rep / name)
    page = index.read_text()
    for name in names:
        assert f"src='{name}'" in page
    assert "<table" in page and (rep / "summary.csv").is_file() and (rep / "final_scores.csv").is_file()
    summ = pd.read_csv(rep / "summary.csv")
    assert {"n_runs", "n_complete", "mean", "iqm", "ci_low", "ci_high", "completeness"} <= set(summ.columns)


def test_plot_functions_directly_and_graceful_skips(tmp_path):
    d = write_sweep(tmp_path / "s", methods=("dense", "dense_width", "rigl"), sparsities=(0.9,), seeds=3)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    fs = stats.final_scores(results, runs)
    out = tmp_path / "png"
    assert_png(plots.plot_score_vs_sparsity(summ, out / "a.png"))  # one sparsity: still drawn
    assert_png(plots.plot_score_vs_params(summ, out / "f.png"))
    assert_png(plots.plot_learning_curves(results, runs, out / "b.png"))
    assert_png(plots.plot_iqm_bars(fs, runs, out / "c.png", reps=200))
    assert_png(plots.plot_dormant(results, runs, out / "d.png"))
    rob = pd.DataFrame({"run": runs.run, "sigma": 0.1, "eval_return": 1.0})
    assert_png(plots.plot_robustness(rob, runs, out / "e.png"))
    # missing data -> SkipPlot naming what is missing, no file
    dense_only = summ[summ.method == "dense"]
    skips = [(plots.plot_score_vs_sparsity, (dense_only,), "only full-dense"),
             (plots.plot_score_vs_params, (dense_only,), "only full-dense"),
             (plots.plot_score_vs_params, (summ.drop(columns="final_active_params"),), "final_active_params"),
             (plots.plot_iqm_bars, (fs[fs.method != "dense"], runs), "full-dense"),
             (plots.plot_dormant, (results.drop(columns="dormant_frac"), runs), "dormant_frac"),
             (plots.plot_robustness, (pd.DataFrame(columns=["run", "sigma", "eval_return"]), runs), "robustness"),
             (plots.plot_dormant, (results.assign(dormant_frac=np.nan), runs), "dormant_frac")]
    for i, (fn, args, reason) in enumerate(skips):
        with pytest.raises(plots.SkipPlot, match=reason):
            fn(*args, out / f"x{i}.png")
    assert not any((out / f"x{i}.png").exists() for i in range(len(skips)))


def test_parameter_axis_and_sparsity_are_measured_not_planned(tmp_path, monkeypatch):
    """runs.csv plans 136,706 (dense) and 13,670 (prune 90%) active parameters; here the runs
    measured other counts and sparsities at their last evaluation, which the summary and the
    scaling figure must show."""
    d = write_sweep(tmp_path / "s", methods=("dense", "prune"), sparsities=(0.9,), seeds=2)
    res = pd.read_csv(d / "results.csv")
    last = res["step"] == res["step"].max()
    measured = {0: 136_000, 1: 136_000, 2: 20_000, 3: 22_000}  # run -> active params at the last evaluation
    res.loc[last, "active_params"] = res.loc[last, "run"].map(measured)
    res.loc[last & (res["method"] == "prune"), "actual_sparsity"] = [0.85, 0.87]
    res.to_csv(d / "results.csv", index=False)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=100).set_index("method")
    assert summ.loc["prune", "final_active_params"] == np.mean([20_000, 22_000])
    assert summ.loc["dense", "final_active_params"] == 136_000
    assert summ.loc["prune", "final_actual_sparsity"] == pytest.approx(0.86)
    assert "active_params" not in summ.columns  # the plan's count is not shown as a result

    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig) or Path(path))
    plots.plot_score_vs_params(summ.reset_index(), tmp_path / "p.png")
    ax = figures[0].axes[0]
    xs = [float(x) for line in ax.lines for x in np.atleast_1d(line.get_xdata())]
    assert 136_000 in xs and 136_706 not in xs  # dense: its vertical line at the measured count
    prune_x = [x for x in xs if 1000 < x < 100_000]  # (horizontal lines span x 0..1 in axes units)
    assert prune_x and all(abs(x / 21_000 - 1) < 0.05 for x in prune_x)  # not at the planned 13,670


def test_report_without_dense_or_dormant_still_writes(tmp_path):
    d = write_sweep(tmp_path, methods=("rigl", "set"), sparsities=(0.9,), seeds=2)
    res = pd.read_csv(d / "results.csv").drop(columns="dormant_frac")
    res.to_csv(d / "results.csv", index=False)
    page = report.write_report(d, reps=200).read_text()
    assert "Not drawn" in page and "score_vs_sparsity.png" in page and "iqm_bars.png" not in page


# ------------------------------------------------------------------- bad inputs
def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        report.write_report(tmp_path / "nope")
    d = write_sweep(tmp_path / "s", methods=("dense",), seeds=1)
    for name in ("results.csv", "runs.csv", "config.yaml"):
        e = tmp_path / f"missing_{name}"
        write_sweep(e, methods=("dense",), seeds=1)
        (e / name).unlink()
        with pytest.raises(FileNotFoundError, match=name):
            report.write_report(e, reps=10)
    header = (d / "results.csv").read_text().splitlines()[0]
    (d / "results.csv").write_text(header + "\n")
    with pytest.raises(ValueError, match="no rows"):
        report.write_report(d, reps=10)
    (d / "results.csv").write_text("")
    with pytest.raises(ValueError, match="no rows"):
        report.write_report(d, reps=10)
    (d / "results.csv").write_text(header + "\n0,CartPole-v1,dq")  # only a partial line
    with pytest.raises(ValueError, match="no rows"):
        report.write_report(d, reps=10)
    (d / "results.csv").write_text("run,step\n0,1\n")
    with pytest.raises(ValueError, match="missing column"):
        report.write_report(d, reps=10)


def test_analysis_does_not_import_jax(tmp_path):
    """The package, analysis, results and the report's command line never load jax."""
    code = "import purejaxsparse.analysis, sys; assert 'jax' not in sys.modules, 'analysis imported jax'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    d = write_sweep(tmp_path / "s", methods=("dense", "rigl"), sparsities=(0.9,), seeds=2)
    runner = ("import runpy, sys; sys.argv = ['report', sys.argv[1], '--reps', '20']\n"
              "try:\n    runpy.run_module('purejaxsparse.analysis.report', run_name='__main__')\n"
              "except SystemExit as e:\n    assert not e.code, e.code\n"
              "assert 'jax' not in sys.modules, 'the report imported jax'")
    subprocess.run([sys.executable, "-c", runner, str(d)], check=True, cwd=REPO)
    assert (d / "report" / "index.html").is_file()


def test_swept_hparam_splits_lines_but_per_method_default_does_not(tmp_path):
    d = write_sweep(tmp_path, methods=("dense", "set", "rigl"), sparsities=(0.9,), seeds=2,
                    extra_hparams={"update_interval": [100, 1000]})
    config, runs, results = report.load_sweep(d)
    assert stats.group_columns(runs)[-1] == "update_interval"
    # a per-method default (not swept) is constant inside each (env, method, sparsity) cell
    runs2 = runs[runs.update_interval == 100].assign(start=runs.method.map({"dense": 0, "set": 0, "rigl": 20_000}))
    assert stats.group_columns(runs2) == ["env", "agent", "method", "sparsity"]
    assert_png(plots.plot_learning_curves(results, runs, tmp_path / "lc.png"))
    summ = stats.summarize(results, runs, config, reps=100)
    assert len(summ) == 6
    assert_png(plots.plot_score_vs_sparsity(summ, tmp_path / "sv.png"))
