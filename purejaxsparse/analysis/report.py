"""Read a sweep output directory and write its report: summary.csv, PNG figures, index.html.

Usage: ``write_report(DIR)`` or ``python -m purejaxsparse.analysis.report DIR``.

DIR holds ``config.yaml``, ``runs.csv`` (one row per run) and ``results.csv`` (one row per
(run, evaluation); appended while the sweep runs). The report goes to ``DIR/report/``;
it may be made at any time, also while the sweep is running: a partial last line of
results.csv is ignored, and the page says how complete the sweep is.
"""
from __future__ import annotations

import argparse
import html
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..results import divergence_recorded, diverged_runs, load_sweep
from . import plots
from . import stats as st
from .plot_style import SkipPlot, method_rank

log = logging.getLogger(__name__)

__all__ = ["completeness", "write_report", "summary_table"]


def completeness(results: pd.DataFrame, runs: pd.DataFrame, config: Mapping[str, Any]) -> dict:
    """Counts of evaluations and runs done vs planned, and a one-line text for the report."""
    n_exp = st.expected_evals(config)
    per_run = results.groupby("run").size().reindex(runs["run"], fill_value=0)
    done = int(per_run.clip(upper=n_exp).sum())
    expected = int(len(runs) * n_exp)
    complete_runs = int((per_run >= n_exp).sum())
    is_complete = complete_runs == len(runs)
    text = (f"{done}/{expected} evaluations, {complete_runs}/{len(runs)} runs complete; "
            + ("sweep complete" if is_complete else "sweep still running or interrupted"))
    return dict(evals_done=done, evals_expected=expected, runs_complete=complete_runs,
                n_runs=len(runs), complete=is_complete, text=text)


def _sort_summary(summary: pd.DataFrame) -> pd.DataFrame:
    if summary.empty:
        return summary
    rank = summary["method"].map(lambda m: method_rank(m)[0])
    cols = [c for c in ("env", "agent") if c in summary.columns]
    return (summary.assign(_rank=rank).sort_values(cols + ["_rank", "sparsity"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


_HTML_COLS = ("check", "n_runs", "n_scored", "n_diverged", "n_incomplete", "n_complete", "completeness",
              "final_step_min", "final_step_max", "mean", "iqm", "ci_low", "ci_high", "norm_iqm", "norm_ci_low",
              "norm_ci_high", "final_actual_sparsity", "final_active_params", "final_dormant_frac", "ci_note")

_CSS = """
body{font-family:sans-serif;max-width:1400px;margin:1.5em auto;padding:0 1em;color:#222}
.incomplete{color:#a40000;font-weight:bold}.complete{color:#1a6b1a;font-weight:bold}
.warning{border:2px solid #c00;background:#fff0f0;padding:.6em 1em;margin:1em 0}
.warning h2{color:#a40000;margin:.2em 0 .4em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.95em;color:#444;margin-top:.3em}
table.summary{border-collapse:collapse;font-size:.85em}
table.summary td,table.summary th{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.summary th{background:#f0f0f0}
"""

_METRIC_FIGURES = (  # (file, results column, scale, y label, title, caption, panel names)
    ("dormant.png", "dormant_frac", 100.0, "Dormant neurons{tau} (% of hidden units)", "dormant neurons over training",
     "Dormant neurons: fraction of tau-dormant hidden units over training, colour by method, line style by "
     "sparsity, mean over seeds; actor-critic agents: a panel per network.", None),
    ("sparsity.png", "actual_sparsity", 100.0, "Actual sparsity (% of weights zero)", "actual sparsity over training",
     "Actual sparsity over training (pruning schedules, per-network targets), colour by method, line style by "
     "target sparsity, mean over seeds; actor-critic agents: a panel per network.", None),
    ("grad_snr.png", "grad_snr", 1.0, "Gradient SNR (|mean| / std)", "gradient signal-to-noise ratio",
     "Gradient signal-to-noise ratio: mean over weight entries of |mean| / std of per-sample gradients on a "
     "training batch (the latest value at each evaluation), over every entry of the dense network (as rigl's "
     "log_snr) and over active entries only; mean over seeds.",
     {"grad_snr": "every weight entry", "grad_snr_active": "active entries"}),
)


def _fmt_cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def write_report(out_dir: str | Path, reps: int = 2000, seed: int = 0) -> Path:
    """Write ``DIR/report/`` (summary.csv, final_scores.csv, PNGs, index.html); return index.html.

    ``reps``/``seed``: bootstrap replications and seed of the 95% CIs (same seed, same numbers).
    Every run counts in every statistic and figure at the returns it measured; diverged runs
    (:func:`purejaxsparse.results.diverged_runs`) are listed at the top of the page, and the
    summary marks each group with diverged or incomplete runs. A ``report/robustness.csv`` (from
    ``purejaxsparse robustness``) adds its figure. Raises FileNotFoundError/ValueError with a
    one-line message when DIR lacks config.yaml, runs.csv or results.csv, or results.csv has no rows.
    """
    out_dir = Path(out_dir)
    config, runs, results = load_sweep(out_dir)
    rep = out_dir / "report"
    rep.mkdir(parents=True, exist_ok=True)

    n_exp = st.expected_evals(config)
    scores = st.normalize_scores(st.final_scores(results, runs, n_expected=n_exp))
    scores.to_csv(rep / "final_scores.csv", index=False)
    summary = _sort_summary(st.summarize(results, runs, config, reps=reps, seed=seed))
    summary.to_csv(rep / "summary.csv", index=False)
    comp = completeness(results, runs, config)
    diverged = diverged_runs(results)

    gcols = st.group_columns(runs)
    figures: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []

    def add(name: str, caption: str, fn, *args, **kwargs):
        try:
            fn(*args, rep / name, **kwargs)
            figures.append((name, caption))
        except SkipPlot as e:
            (rep / name).unlink(missing_ok=True)  # no stale figure from an earlier report
            skipped.append((caption.split(":")[0], str(e)))

    add("score_vs_sparsity.png",
        "Final return vs sparsity: IQM of per-run final scores over seeds with its 95% stratified-bootstrap CI "
        "as error bars (and a band between sparsities); full dense as a horizontal line with its CI band; "
        "dashed = bias off.",
        plots.plot_score_vs_sparsity, summary, group_cols=st.summary_group_columns(summary))
    add("score_vs_params.png",
        "Final return vs active parameter count (Graesser et al.'s scaling curves): IQM with its 95% CI per "
        "group at the mean active count its runs measured at their last evaluation, log scale; full dense as a "
        "horizontal line at its return and a "
        "dotted vertical line at its size, so methods of one size compare at one x.",
        plots.plot_score_vs_params, summary, group_cols=st.summary_group_columns(summary))
    add("iqm_bars.png",
        "IQM bars: normalised final return (1 = mean of full-dense runs of the env and network width) "
        "at the sparsity closest to 90%, with 95% stratified-bootstrap CIs; 'All envs' pools every env drawn "
        "(envs without a positive full-dense mean, where returns are costs, are not drawn; the axis names them).",
        plots.plot_iqm_bars, scores, runs, reps=reps, seed=seed, group_cols=gcols)
    add("learning_curves.png",
        "Learning curves: evaluation return vs environment steps, mean over seeds with +-1 std band, "
        "one panel per env and sparsity (full dense repeated in each panel).",
        plots.plot_learning_curves, results, runs, group_cols=gcols)
    tau = (config.get("agent_config") or {}).get("dormant_tau")
    for name, column, scale, ylabel, title, caption, panel_names in _METRIC_FIGURES:
        if column in results.columns:
            add(name, caption, plots.plot_metric_over_training, results, runs, metric=column, scale=scale,
                ylabel=ylabel.format(tau=f", \u03c4 = {tau:g}" if tau is not None else ""), title=title,
                group_cols=gcols, panel_names=panel_names)
    rob_path = rep / "robustness.csv"
    if rob_path.is_file():
        try:
            rob = pd.read_csv(rob_path, on_bad_lines="skip")
        except pd.errors.EmptyDataError:
            rob = pd.DataFrame()
        add("robustness.png",
            "Robustness: evaluation return vs std of Gaussian noise added to observations at evaluation, "
            "per method and parameter budget (line style), mean over seeds +-1 std.",
            plots.plot_robustness, rob, runs, group_cols=gcols)

    page = _html(out_dir, config, runs, summary, comp, figures, skipped, reps, diverged,
                 divergence_recorded(results))
    index = rep / "index.html"
    index.write_text(page)
    log.info("report written: %s (%s)", index, comp["text"])
    return index


def _diverged_box(diverged: pd.DataFrame, n_runs: int) -> str:
    """The warning box at the top of the page: every diverged run, or nothing."""
    if diverged.empty:
        return ""
    table = diverged.to_html(index=False, border=0, classes="summary")
    return (f"<div class='warning'><h2>{len(diverged)} of {n_runs} runs diverged</h2>"
            "<p>Their parameters or loss became non-finite (NaN/inf) at <code>diverged_step</code> "
            "(-1: step not recorded; <code>first_eval_step</code>: the first evaluation that says so). They "
            "count in every statistic (IQM, CI, means, the dense reference) and figure below at the returns "
            "they measured, as every run does; their groups are marked in the summary (column n_diverged).</p>"
            f"{table}</div>")


def _html(out_dir: Path, config: Mapping[str, Any], runs: pd.DataFrame, summary: pd.DataFrame,
          comp: dict, figures: list[tuple[str, str]], skipped: list[tuple[str, str]], reps: int,
          diverged: pd.DataFrame, recorded: bool) -> str:
    esc = html.escape
    agent = config.get("agent", runs["agent"].iloc[0])
    envs = ", ".join(sorted(map(str, runs["env"].unique())))
    sweep = config.get("sweep") or {}

    def values(v: Any) -> str:
        return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    swept = ("; ".join(f"{esc(str(k))} = {esc(values(v))}" for k, v in sweep.items())
             if isinstance(sweep, Mapping) else esc(str(sweep)))
    cols = st.summary_group_columns(summary) + [c for c in _HTML_COLS if c in summary.columns]
    cols += [c for c in summary.columns if c.startswith(tuple(f"final_{m}" for m in st.FINAL_METRICS))
             and c not in cols]  # per network
    table = (summary[cols].to_html(index=False, classes="summary", border=0, formatters={c: _fmt_cell for c in cols})
             if len(summary) else "<p>No groups.</p>")
    counted = ("<p>Every run counts in every statistic at the returns it measured. Column <code>check</code> "
               "marks the groups with diverged or incomplete runs.</p>")
    left_out = counted + (f"<p class='incomplete'>{len(diverged)} run(s) diverged (column n_diverged; listed "
                          f"at the top).</p>" if len(diverged)
                          else "<p>No run diverged.</p>" if recorded
                          else "<p>results.csv does not record divergence (no <code>finite</code> column: an "
                               "older sweep).</p>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Sweep report: {esc(str(agent))} on {esc(envs)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Sweep report: {esc(str(agent))} on {esc(envs)}</h1>",
        _diverged_box(diverged, len(runs)),
        f"<p class='{'complete' if comp['complete'] else 'incomplete'}'>{esc(comp['text'])}</p>",
        f"<p>Directory: <code>{esc(str(out_dir))}</code>. {config.get('total_steps')} environment steps per run, "
        f"evaluation every {config.get('eval_every')} steps"
        + (f" ({config['eval_episodes']} episodes)" if "eval_episodes" in config else "")
        + f". Swept: {swept or 'nothing'}.</p>",
        "<p>Final score of a run = mean evaluation return over its last max(1, floor(0.1 n)) evaluations "
        "(n = evaluations the run has; incomplete runs are scored on what they have). Groups pool seeds; "
        f"IQM = 25% trimmed mean, CI = 95% stratified bootstrap ({reps} reps, rliable); a group with one run "
        "has CI = its point estimate. Normalised = divided by the mean final score of the env's full-dense runs.</p>",
        "<h2>Figures</h2>",
    ]
    for name, caption in figures:
        parts.append(f"<figure><img src='{esc(name)}' alt='{esc(caption.split(':')[0])}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    if skipped:
        parts.append("<p>Not drawn:</p><ul>")
        parts += [f"<li>{esc(n)}: {esc(r)}</li>" for n, r in skipped]
        parts.append("</ul>")
    parts += [
        "<h2>Summary</h2>",
        "<p>One row per group; all columns in <a href='summary.csv'>summary.csv</a>, "
        "per-run scores in <a href='final_scores.csv'>final_scores.csv</a>.</p>",
        left_out,
        table,
        "</body></html>",
    ]
    return "\n".join(parts)


def summary_table(out_dir: str | Path) -> str:
    """For the terminal: final score (mean eval return over the last 10% of evaluations) per
    group, mean and std over every run, how many of them diverged or are incomplete (a group
    with any is marked), and a last line on diverged runs."""
    try:
        config, runs, results = load_sweep(out_dir)
    except ValueError:
        return "(no evaluations yet)"
    scores = st.final_scores(results, runs, n_expected=st.expected_evals(config))
    keys = [c for c in st.group_columns(runs) if c not in ("env", "agent")]
    table = scores.assign(incomplete=~scores["complete"]).groupby(keys, sort=False, dropna=False).agg(
        runs=("final_score", "count"), final_score=("final_score", "mean"), std=("final_score", "std"),
        actual_sparsity=("final_actual_sparsity", "mean"), diverged=("diverged", "sum"),
        incomplete=("incomplete", "sum")).reset_index()
    table["check"] = [st.group_check(d, i, short=True) for d, i in zip(table["diverged"], table["incomplete"])]
    text = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    if table["check"].eq("!").any():
        text += "\n! diverged or incomplete runs: counted in the scores above at the returns they measured"
    n_div = int(scores["diverged"].sum())
    if divergence_recorded(results):
        text += f"\ndiverged runs: {n_div} of {len(scores)}"
    else:
        text += "\ndiverged runs: not recorded (results.csv has no finite/diverged_step columns)"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write DIR/report/index.html for a sweep output directory.")
    ap.add_argument("out_dir")
    ap.add_argument("--reps", type=int, default=2000, help="bootstrap replications (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # rliable logs a line per bootstrap
    try:
        print(write_report(args.out_dir, reps=args.reps, seed=args.seed))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
