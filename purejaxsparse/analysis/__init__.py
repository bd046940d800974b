"""Analysis of a sweep's results table: final scores, IQM with bootstrap CIs, the papers' plots, a report.

Pure numpy/pandas/matplotlib/rliable; never imports jax (nor does ``import purejaxsparse``).
Entry point: :func:`write_report`. Reading the sweep's files: :mod:`purejaxsparse.results`.
"""
from ..results import diverged_runs, load_sweep, read_config, read_results, read_runs
from .plots import (
    SkipPlot,
    plot_dormant,
    plot_iqm_bars,
    plot_learning_curves,
    plot_metric_over_training,
    plot_robustness,
    plot_score_vs_sparsity,
)
from .stats import (
    dense_reference,
    expected_evals,
    final_scores,
    group_columns,
    iqm,
    iqm_ci,
    normalize_scores,
    summarize,
)

__all__ = [
    "write_report", "summary_table", "completeness", "load_sweep", "read_config", "read_runs", "read_results",
    "diverged_runs", "final_scores", "group_columns", "summarize", "iqm", "iqm_ci", "expected_evals",
    "dense_reference", "normalize_scores", "SkipPlot",
    "plot_score_vs_sparsity", "plot_learning_curves", "plot_iqm_bars", "plot_dormant",
    "plot_metric_over_training", "plot_robustness",
]

_REPORT_NAMES = ("write_report", "summary_table", "completeness")


def __getattr__(name: str):
    # report is imported lazily so that `python -m purejaxsparse.analysis.report DIR` runs
    # it once, as __main__, without runpy's "found in sys.modules" warning.
    if name in _REPORT_NAMES:
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
