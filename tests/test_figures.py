"""What the figures show: legends name only what the sweep varied; one sparsity shows every
method's CI as an error bar (the figures as matplotlib draws them, on synthetic sweeps)."""
from __future__ import annotations

import numpy as np
import pytest

from purejaxsparse.analysis import plots, report, stats
from conftest import write_sweep

@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the plot functions save (and still save them)."""
    figs = []
    real = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig) or real(fig, path))
    return figs


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_legends_name_only_what_runs_csv_shows_was_swept(tmp_path, drawn):
    d = write_sweep(tmp_path, methods=("dense", "static", "rigl"), sparsities=(0.5, 0.9), seeds=2,
                    use_bias=(True, False), extra_hparams={"update_interval": [100, 1000]})
    config, runs, results = report.load_sweep(d)
    # per-evaluation metrics vary within every group but never split lines (called without group_cols)
    plots.plot_learning_curves(results, runs, tmp_path / "lc.png")
    plots.plot_dormant(results, runs, tmp_path / "d.png")
    plots.plot_iqm_bars(stats.final_scores(results, runs), runs, tmp_path / "b.png", reps=50)
    plots.plot_score_vs_sparsity(stats.summarize(results, runs, config, reps=50), tmp_path / "s.png")
    methods = ["Dense (full)", "Static", "RigL"]
    variants = ["update_interval=100", "update_interval=1000"]
    lc, dormant, bars, score = map(_legend, drawn)
    assert lc == score == methods + ["bias on", "bias off"] + variants
    assert bars == methods + ["bias off"] + variants
    assert dormant == methods + ["50% sparse", "90% sparse"] + variants  # bias: a panel each
    assert [ax.get_title() for ax in drawn[1].axes] == ["CartPole-v1, bias on", "CartPole-v1, bias off"]
    # a hyperparameter that no run varies, or that is a per-method default, is not a variant
    one = runs[(runs.update_interval == 100) & runs.use_bias].assign(start=runs.method.map({"dense": 0, "static": 0,
                                                                                           "rigl": 500}))
    plots.plot_learning_curves(results[results.run.isin(one.run)], one, tmp_path / "lc1.png")
    assert _legend(drawn[-1]) == methods


def test_one_sparsity_shows_every_methods_ci_as_an_error_bar(tmp_path, drawn):
    d = write_sweep(tmp_path, methods=("dense", "static", "set", "rigl", "prune"), sparsities=(0.9,), seeds=3)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=200)
    plots.plot_score_vs_sparsity(summ, tmp_path / "s.png")
    ax = drawn[0].axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 4  # static, set, rigl, prune; dense is the line with its band
    sparse = summ[summ.method != "dense"].set_index("method")
    for c in bars:
        (x,), (y,) = (np.atleast_1d(v) for v in c.lines[0].get_data())
        segment = c.lines[2][0].get_segments()[0]  # the vertical bar: (x, low) - (x, high)
        row = sparse[np.isclose(sparse.iqm, y)].iloc[0]
        assert segment[0][1] == pytest.approx(row.ci_low) and segment[1][1] == pytest.approx(row.ci_high)
        assert row.ci_high > row.ci_low and abs(x - 0.9) < 0.02  # side by side around 90%
    assert len({round(float(np.atleast_1d(c.lines[0].get_data()[0])[0]), 6) for c in bars}) == 4


def test_one_sparsity_is_named_in_the_title_not_as_a_line_style(tmp_path, drawn):
    """Over training, a single sparsity draws every line solid: a legend entry for it would
    say nothing (and its grey would read as param-matched dense's), so the title names it."""
    d = write_sweep(tmp_path, methods=("dense", "dense_width", "static"), sparsities=(0.9,), seeds=2)
    config, runs, results = report.load_sweep(d)
    plots.plot_dormant(results, runs, tmp_path / "d.png")
    assert _legend(drawn[0]) == ["Dense (full)", "Dense (param-matched)", "Static"]
    assert drawn[0].get_suptitle().endswith("mean over seeds, sparsity 90%")
    assert {line.get_linestyle() for ax in drawn[0].axes for line in ax.get_lines()} == {"-"}


def test_learning_curves_leave_out_a_sparsity_an_env_did_not_run(tmp_path, drawn):
    """A merged study: Acrobot at 50% and 90%, MountainCar at 90% only. MountainCar gets no 50%
    panel (it would hold only its full-dense reference)."""
    d = write_sweep(tmp_path, envs=("Acrobot-v1", "MountainCar-v0"), methods=("dense", "static"),
                    sparsities=(0.5, 0.9), seeds=2)
    config, runs, results = report.load_sweep(d)
    runs = runs[~((runs.env == "MountainCar-v0") & (runs.sparsity == 0.5))]
    plots.plot_learning_curves(results[results.run.isin(runs.run)], runs, tmp_path / "lc.png")
    titles = [ax.get_title() for ax in drawn[0].axes if ax.get_visible()]
    assert titles == ["Acrobot-v1, sparsity 50%", "Acrobot-v1, sparsity 90%", "MountainCar-v0, sparsity 90%"]
    lines = [len(ax.get_lines()) for ax in drawn[0].axes if ax.get_visible()]
    assert lines == [2, 2, 2]  # full dense and static in each


def test_score_vs_params_labels_each_sparsity_once_at_its_highest_point(tmp_path, drawn):
    d = write_sweep(tmp_path, methods=("dense", "static", "set", "rigl", "prune"), sparsities=(0.8, 0.9, 0.98),
                    seeds=3)
    config, runs, results = report.load_sweep(d)
    summ = stats.summarize(results, runs, config, reps=50)
    plots.plot_score_vs_params(summ, tmp_path / "p.png")
    labels = [(t.get_text(), t.xy[1]) for t in drawn[0].axes[0].texts]
    assert sorted(text for text, _ in labels) == ["80%", "90%", "98%"]
    sparse = summ[summ.method != "dense"]
    for text, y in labels:
        level = sparse[np.isclose(sparse.sparsity, float(text[:-1]) / 100)]
        assert y == pytest.approx(level.iqm.max())  # beside the best method of that sparsity


def test_iqm_bars_name_the_envs_they_cannot_normalise(tmp_path, drawn):
    d = write_sweep(tmp_path, envs=("CartPole-v1", "Acrobot-v1"), methods=("dense", "rigl"), sparsities=(0.9,), seeds=2)
    config, runs, results = report.load_sweep(d)
    results.loc[results.env == "Acrobot-v1", "eval_return"] = -80.0  # a cost: no ratio to full dense
    plots.plot_iqm_bars(stats.final_scores(results, runs), runs, tmp_path / "b.png", reps=50)
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CartPole-v1"]
    assert ax.get_xlabel().endswith("normalise by: Acrobot-v1)")
    results.loc[results.env == "Acrobot-v1", "eval_return"] = 80.0  # both drawn, nothing named
    plots.plot_iqm_bars(stats.final_scores(results, runs), runs, tmp_path / "c.png", reps=50)
    assert [t.get_text() for t in drawn[1].axes[0].get_xticklabels()] == ["Acrobot-v1", "CartPole-v1", "All envs"]
    assert drawn[1].axes[0].get_xlabel() == "Environment"
