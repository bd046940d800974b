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
import io
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from . import plots
from . import stats as st

log = logging.getLogger(__name__)

__all__ = ["load_config", "read_runs", "read_results", "load_sweep", "completeness", "write_report"]

RUN_REQUIRED = ("run", "env", "agent", "method", "sparsity", "seed")
RESULT_REQUIRED = ("run", "env", "agent", "method", "sparsity", "seed", "step", "eval_return")
_NUMERIC = ("run", "sparsity", "seed", "step", "eval_return", "actual_sparsity", "active_params", "dormant_frac")
_NUMERIC_PREFIXES = ("actual_sparsity", "active_params", "dormant_frac", "grad_snr")


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (is this a sweep output directory?)")
    return path


def load_config(out_dir: str | Path) -> dict:
    """``DIR/config.yaml`` as a dict; must have ``total_steps`` and ``eval_every``."""
    path = _require(Path(out_dir) / "config.yaml", "config.yaml")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(cfg).__name__}")
    missing = [k for k in ("total_steps", "eval_every") if k not in cfg]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    return cfg


def read_runs(out_dir: str | Path) -> pd.DataFrame:
    """``DIR/runs.csv``: one row per run; must have run, env, agent, method, sparsity, seed."""
    path = _require(Path(out_dir) / "runs.csv", "runs.csv")
    try:
        runs = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    missing = [c for c in RUN_REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    if runs.empty:
        raise ValueError(f"{path} has no rows")
    return runs


def read_results(out_dir: str | Path) -> pd.DataFrame:
    """``DIR/results.csv``, read robustly while the sweep may still be appending to it.

    A last line without its newline (a write in progress) is dropped, lines with too many
    fields are skipped, rows whose run/step/eval_return are missing or not numbers are
    dropped, and for a repeated (run, step) the last row wins (a sweep resumed from a
    checkpoint may append an evaluation again).
    """
    path = _require(Path(out_dir) / "results.csv", "results.csv")
    text = path.read_text(errors="replace")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        raise ValueError(f"{path} has no rows")
    df = pd.read_csv(io.StringIO(text), on_bad_lines="skip")
    missing = [c for c in RESULT_REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    for c in df.columns:
        if c in _NUMERIC or c.startswith(_NUMERIC_PREFIXES):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    n0 = len(df)
    df = df.dropna(subset=["run", "step", "eval_return", "method", "env"])
    if len(df) < n0:
        log.warning("%s: skipped %d malformed row(s)", path, n0 - len(df))
    if df.empty:
        raise ValueError(f"{path} has no rows")
    df = df.astype({"run": int, "step": int})
    df = df.drop_duplicates(["run", "step"], keep="last").sort_values(["run", "step"], kind="stable")
    return df.reset_index(drop=True)


def load_sweep(out_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """``(config, runs, results)`` of a sweep output directory (see the module docstring)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"sweep output directory not found: {out_dir}")
    return load_config(out_dir), read_runs(out_dir), read_results(out_dir)


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


def _env_names(config: Mapping[str, Any], runs: pd.DataFrame) -> str:
    envs = sorted(map(str, runs["env"].unique()))
    if envs:
        return ", ".join(envs)
    env = config.get("env")
    return str(env.get("name") if isinstance(env, Mapping) else env)


def _sort_summary(summary: pd.DataFrame) -> pd.DataFrame:
    if summary.empty:
        return summary
    rank = summary["method"].map(lambda m: plots._method_rank(m)[0])
    cols = [c for c in ("env", "agent") if c in summary.columns]
    return (summary.assign(_rank=rank).sort_values(cols + ["_rank", "sparsity"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


_HTML_COLS = ("n_runs", "n_scored", "n_complete", "completeness", "final_step_min", "final_step_max",
              "mean", "iqm", "ci_low", "ci_high", "norm_iqm", "norm_ci_low", "norm_ci_high",
              "final_actual_sparsity", "final_dormant_frac", "ci_note")

_CSS = """
body{font-family:sans-serif;max-width:1400px;margin:1.5em auto;padding:0 1em;color:#222}
.incomplete{color:#a40000;font-weight:bold}.complete{color:#1a6b1a;font-weight:bold}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.95em;color:#444;margin-top:.3em}
table.summary{border-collapse:collapse;font-size:.85em}
table.summary td,table.summary th{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.summary th{background:#f0f0f0}
"""


def _fmt_cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def write_report(out_dir: str | Path, reps: int = 2000, seed: int = 0) -> Path:
    """Write ``DIR/report/`` (summary.csv, final_scores.csv, PNGs, index.html); return index.html.

    ``reps``/``seed``: bootstrap replications and seed of the 95% CIs (same seed, same numbers).
    Raises FileNotFoundError/ValueError with a one-line message when DIR lacks config.yaml,
    runs.csv or results.csv, or results.csv has no rows.
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

    gcols = st.group_columns(config, runs)
    figures: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []

    def add(name: str, caption: str, fn, *args, **kwargs):
        path, reason = plots.try_plot(fn, *args, rep / name, **kwargs)
        if path is not None:
            figures.append((name, caption))
        else:
            skipped.append((caption.split(":")[0], reason or "no data"))

    add("score_vs_sparsity.png",
        "Final return vs sparsity: IQM of per-run final scores over seeds, shaded 95% stratified-bootstrap CI; "
        "full dense as a horizontal line with its band; dashed = bias off.",
        plots.plot_score_vs_sparsity, summary, group_cols=gcols)
    add("iqm_bars.png",
        "IQM bars: normalised final return (1 = mean of full-dense runs of the env) at the sparsity closest "
        "to 90%, with 95% stratified-bootstrap CIs; 'All envs' pools every env.",
        plots.plot_iqm_bars, scores, reps=reps, seed=seed, group_cols=gcols)
    add("learning_curves.png",
        "Learning curves: evaluation return vs environment steps, mean over seeds with +-1 std band, "
        "one panel per env and sparsity (full dense repeated in each panel).",
        plots.plot_learning_curves, results, runs, group_cols=gcols)
    add("dormant.png",
        "Dormant neurons: fraction of tau-dormant hidden units over training, colour by method, "
        "line style by sparsity, mean over seeds.",
        plots.plot_dormant, results, runs, group_cols=gcols,
        tau=(config.get("agent_config") or {}).get("dormant_tau"))
    if "grad_snr" in results.columns:
        add("grad_snr.png",
            "Gradient signal-to-noise ratio: |mean| / std of per-sample gradients over training, mean over seeds.",
            plots.plot_metric_over_training, results, runs,
            metric="grad_snr", ylabel="Gradient SNR (|mean| / std)", title="gradient signal-to-noise ratio",
            group_cols=gcols)
    rob_path = rep / "robustness.csv"
    if rob_path.is_file():
        try:
            rob = pd.read_csv(rob_path, on_bad_lines="skip")
        except pd.errors.EmptyDataError:
            rob = pd.DataFrame()
        add("robustness.png",
            "Robustness: evaluation return vs std of Gaussian noise added to observations at evaluation, "
            "per method and parameter budget (line style), mean over seeds +-1 std.",
            plots.plot_robustness, rob, runs)

    page = _html(out_dir, config, runs, summary, comp, figures, skipped, reps)
    index = rep / "index.html"
    index.write_text(page)
    log.info("report written: %s (%s)", index, comp["text"])
    return index


def _html(out_dir: Path, config: Mapping[str, Any], runs: pd.DataFrame, summary: pd.DataFrame,
          comp: dict, figures: list[tuple[str, str]], skipped: list[tuple[str, str]], reps: int) -> str:
    esc = html.escape
    agent = config.get("agent", runs["agent"].iloc[0] if "agent" in runs.columns else "?")
    sweep = config.get("sweep") or {}
    def values(v: Any) -> str:
        return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    swept = ("; ".join(f"{esc(str(k))} = {esc(values(v))}" for k, v in sweep.items())
             if isinstance(sweep, Mapping) else esc(str(sweep)))
    gcols = st.group_columns(config, runs)
    cols = [c for c in gcols if c in summary.columns] + [c for c in _HTML_COLS if c in summary.columns]
    table = (summary[cols].to_html(index=False, classes="summary", border=0, formatters={c: _fmt_cell for c in cols})
             if len(summary) else "<p>No groups.</p>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Sweep report: {esc(str(agent))} on {esc(_env_names(config, runs))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Sweep report: {esc(str(agent))} on {esc(_env_names(config, runs))}</h1>",
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
        table,
        "</body></html>",
    ]
    return "\n".join(parts)


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
