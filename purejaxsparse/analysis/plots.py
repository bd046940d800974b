"""The papers' figures as PNG files, from the sweep's tables.

Every ``plot_*`` function takes DataFrames and an output path and returns the path it wrote,
or raises :class:`~.plot_style.SkipPlot` saying which data is missing (the report lists such
figures as not drawn). The look (colour = method, line style = bias or sparsity level,
marker/hatch = other swept hyperparameters) is :class:`~.plot_style.Style`. Which
hyperparameters split lines is ``group_cols``, by default what runs.csv shows the sweep varied
(:func:`.stats.group_columns`); per-evaluation metrics never do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter, LogLocator

from ..results import DENSE
from . import stats as st
from .plot_style import (SkipPlot, Style, agent_prefix, dodge, figure, merge_runs, method_color, method_label,
                         method_rank, panels, pct, save, sparsity_axis)

__all__ = [
    "SkipPlot", "method_color", "method_label", "metric_columns",
    "plot_score_vs_sparsity", "plot_score_vs_params", "plot_learning_curves", "plot_iqm_bars",
    "plot_metric_over_training", "plot_dormant", "plot_robustness",
]


def _group_cols(runs: pd.DataFrame | None, group_cols: Sequence[str] | None) -> list[str]:
    if group_cols is not None:
        return list(group_cols)
    return st.group_columns(runs) if runs is not None else list(st.BASE_GROUP_COLUMNS)


def _line_ids(df: pd.DataFrame, per_run: pd.DataFrame, style: Style) -> tuple[pd.DataFrame, list[tuple]]:
    """``df`` with ``_line`` (an index into the returned, sorted list of line keys) per row."""
    keys = dict(zip(per_run["run"], style.keys(per_run)))
    ordered = sorted(set(keys.values()), key=style.sort_key)
    index = {k: i for i, k in enumerate(ordered)}
    return df.assign(_line=df["run"].map(lambda r: index[keys[r]])), ordered


def _finish(ax: Any, title: str, xlabel: str, ylabel: str, steps: bool = False) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if steps:
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _pick_levels(levels: list[float], max_levels: int) -> list[float]:
    """All levels if few, else the lowest, the one closest to 90% and the highest."""
    if len(levels) <= max_levels:
        return levels
    return sorted({levels[0], levels[-1], min(levels, key=lambda s: abs(s - 0.9))})


# ---------------------------------------------------------- final score vs sparsity
def _final_returns(summary: pd.DataFrame, value: str, group_cols, x: str):
    """(groups with a `value` and an `x`, their Style, line keys, (CI low, CI high) columns) of
    a summary, or SkipPlot saying what is missing."""
    need = {"env", "method", "sparsity", x, value}
    if summary is None or summary.empty or not need <= set(summary.columns):
        raise SkipPlot(f"summary lacks rows or columns {sorted(need)}")
    df = summary[summary[value].notna() & summary[x].notna()]
    if df.empty:
        raise SkipPlot(f"no group has a {value} value yet")
    if not (df["method"] != DENSE).any():
        raise SkipPlot(f"only full-dense runs: nothing to plot against {x}")
    style = Style(df, group_cols if group_cols is not None else st.summary_group_columns(df))
    pre = value[: -len("iqm")]
    return df, style, style.keys(df), (f"{pre}ci_low", f"{pre}ci_high")


def plot_score_vs_sparsity(summary: pd.DataFrame, path: str | Path, value: str = "iqm",
                           group_cols: Sequence[str] | None = None) -> Path:
    """Final return vs sparsity per env (Graesser Fig 2 / Ganaie Fig 1).

    Each sparse method: its IQM at every sparsity with the 95% CI as an error bar (lines side
    by side, so one sparsity shows every method's CI), and a CI band between sparsities. Full
    dense: a horizontal line with its band; param-matched dense (``dense_width``) likewise when
    run at one sparsity. ``summary``: :func:`stats.summarize`'s output; ``value``: ``"iqm"`` or
    ``"norm_iqm"`` (CI columns follow the prefix). ``group_cols``: the summary's group columns.
    """
    df, style, keys, (lo_c, hi_c) = _final_returns(summary, value, group_cols, "sparsity")
    groups = panels(df)
    fig, axes = figure(len(groups), ncols=3)
    for ax, (title, _, e) in zip(axes, groups):
        ek = keys.loc[e.index]
        xs_all = sorted(e.loc[e["method"] != DENSE, "sparsity"].unique())
        lines = sorted(set(ek), key=style.sort_key)
        flat = [k for k in lines if k[0] == DENSE or (k[0] == "dense_width" and e.loc[ek == k, "sparsity"].nunique() == 1)]
        moving = [k for k in lines if k not in flat]
        for k in lines:
            g = e[ek == k].sort_values("sparsity")
            sty = style.line(k)
            y, lo, hi = (g[c].to_numpy(float) for c in (value, lo_c, hi_c))
            if k in flat:
                for level, low, high in zip(y, lo, hi):
                    ax.axhline(level, color=sty["color"], linestyle=sty["linestyle"], lw=1.6)
                    ax.axhspan(low, high, color=sty["color"], alpha=0.10, lw=0)
                    if sty["marker"]:  # the variant's marker along the level
                        ax.plot(xs_all, [level] * len(xs_all), lw=0, color=sty["color"], ms=5,
                                marker=sty["marker"], markerfacecolor=sty["markerfacecolor"])
                continue
            x = dodge(g["sparsity"].to_numpy(float), moving.index(k), len(moving))
            err = np.clip([y - lo, hi - y], 0, None)
            look = dict(color=sty["color"], linestyle=sty["linestyle"], marker=sty["marker"] or "o",
                        markerfacecolor=sty["markerfacecolor"], ms=5, lw=1.8)
            if np.nan_to_num(err).any():
                ax.errorbar(x, y, yerr=err, elinewidth=1.2, capsize=3, **look)
            else:  # single runs: CI = the point, no bar to draw
                ax.plot(x, y, **look)
            if len(g) > 1:
                ax.fill_between(x, lo, hi, color=sty["color"], alpha=0.08, lw=0)
        sparsity_axis(ax, xs_all)
        if len(xs_all) == 1:
            ax.margins(x=0.15)  # room beside the side-by-side error bars
        _finish(ax, title, "Sparsity (% of weights removed)", "Final return" if value == "iqm" else "Normalised final return")
    n = df["n_scored"] if "n_scored" in df.columns else None
    seeds = "" if n is None else (f" over {int(n.min())}-{int(n.max())} seeds" if n.min() != n.max()
                                  else f" over {int(n.iloc[0])} seed" + ("s" if n.iloc[0] != 1 else ""))
    fig.suptitle(f"{agent_prefix(df)}final return vs sparsity: IQM{seeds}, 95% bootstrap CI (bars, bands); "
                 f"dense as a line with its CI band")
    style.legend(fig, set(keys))
    return save(fig, path)


# ------------------------------------------------------------ final score vs parameters
def plot_score_vs_params(summary: pd.DataFrame, path: str | Path, value: str = "iqm",
                         group_cols: Sequence[str] | None = None) -> Path:
    """Final return vs active parameter count per env (Graesser Fig 2's scaling curves).

    Every group is a point at the mean active count its runs measured at their last evaluation
    (the summary's ``final_active_params``, from results.csv, not the plan) with
    its 95% CI as an error bar; a method's points at several sparsities are joined, and each
    sparsity is labelled once per panel, beside its highest point (methods of one sparsity sit at
    almost one x, so a label per method would overprint). Full dense: a horizontal line with its
    CI band and a dotted vertical line at its parameter count, so a sparse and a param-matched
    dense network of one size can be compared at one x. Log x scale.
    """
    x_col = "final_active_params"
    df, style, keys, (lo_c, hi_c) = _final_returns(summary, value, group_cols, x_col)
    groups = panels(df)
    fig, axes = figure(len(groups), ncols=3)
    for ax, (title, _, e) in zip(axes, groups):
        ek = keys.loc[e.index]
        lines = sorted(set(ek), key=style.sort_key)
        top = {}  # sparsity -> its highest (y, x): where its label goes
        for i, k in enumerate(lines):
            g = e[ek == k].sort_values(x_col)
            sty = style.line(k)
            # methods of one size side by side: a few % apart on the log axis
            x = g[x_col].to_numpy(float) * (1 + 0.025 * (i - (len(lines) - 1) / 2) * (k[0] != DENSE))
            y, lo, hi = (g[c].to_numpy(float) for c in (value, lo_c, hi_c))
            if k[0] == DENSE:
                for level, low, high, count in zip(y, lo, hi, g[x_col]):
                    ax.axhline(level, color=sty["color"], linestyle=sty["linestyle"], lw=1.4)
                    ax.axhspan(low, high, color=sty["color"], alpha=0.10, lw=0)
                    ax.axvline(count, color=sty["color"], linestyle=":", lw=1.0)
            err = np.clip([y - lo, hi - y], 0, None)
            ax.errorbar(x, y, yerr=err, elinewidth=1.2, capsize=3, color=sty["color"], linestyle=sty["linestyle"],
                        marker=sty["marker"] or "o", markerfacecolor=sty["markerfacecolor"], ms=5, lw=1.8)
            if k[0] != DENSE and g["sparsity"].nunique() > 1:
                for xi, yi, si in zip(x, y, g["sparsity"]):
                    if np.isfinite(yi) and (si not in top or yi > top[si][0]):
                        top[si] = (yi, xi)
        for si, (yi, xi) in sorted(top.items()):
            ax.annotate(pct(si), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8, color="0.25")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
        ax.xaxis.set_minor_formatter(EngFormatter(sep=""))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        _finish(ax, title, "Active parameters (log scale)", "Final return" if value == "iqm" else "Normalised final return")
    fig.suptitle(f"{agent_prefix(df)}final return vs active parameters: IQM, 95% bootstrap CI; "
                 f"full dense as lines at its return and size")
    style.legend(fig, set(keys))
    return save(fig, path)


# ------------------------------------------------------------------ learning curves
def plot_learning_curves(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                         metric: str = "eval_return", group_cols: Sequence[str] | None = None) -> Path:
    """Evaluation return vs environment steps, one panel per (env, sparsity).

    Lines are the mean over seeds with a +-1 std band (the band narrows to the seeds that
    reached a step, so a running sweep shows its tail on fewer seeds). Full dense is drawn in
    every panel of its env as the reference; param-matched dense in the panel of its sparsity.
    An (env, sparsity) that no sparse run trained gets no panel (merged studies may run an env
    at fewer sparsities than another).
    """
    if results is None or results.empty or metric not in results.columns:
        raise SkipPlot(f"no results with a {metric} column")
    df = merge_runs(results, runs)
    df = df[df[metric].notna()]
    if df.empty:
        raise SkipPlot(f"no {metric} values")
    per_run = df.drop_duplicates("run")
    style = Style(per_run, _group_cols(runs, group_cols))
    df, lines = _line_ids(df, per_run, style)
    levels = sorted(df.loc[df["method"] != DENSE, "sparsity"].unique())
    splits = [(f"sparsity {pct(s)}", s, lambda b, s=s: (b["sparsity"] == s) | (b["method"] == DENSE)) for s in levels]
    groups = panels(df, splits=splits or [("", None, None)])
    if levels:  # not a panel that would hold only the full-dense reference
        groups = [g for g in groups if (g[2]["method"] != DENSE).any()]
    fig, axes = figure(len(groups), ncols=len(levels) if 1 <= len(levels) <= 6 else 4, panel=(4.4, 3.2))
    for ax, (title, _, e) in zip(axes, groups):
        if e.empty:
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center")
        for i, g in e.groupby("_line"):
            by_step = g.groupby("step")[metric]
            m, sd = by_step.mean(), by_step.std(ddof=1).fillna(0.0)
            sty = style.line(lines[i])
            ax.plot(m.index, m.to_numpy(), lw=1.5, ms=3, markevery=max(1, len(m) // 8), **sty)
            ax.fill_between(m.index, m - sd, m + sd, color=sty["color"], alpha=0.12, lw=0)
        _finish(ax, title, "Environment steps", "Evaluation return", steps=True)
    fig.suptitle(f"{agent_prefix(df)}learning curves: mean over seeds, shaded +-1 std")
    style.legend(fig, lines)
    return save(fig, path)


# ------------------------------------------------------------------------ IQM bars
def _closest_sparsity(scores: pd.DataFrame, target: float) -> float | None:
    levels = sorted(scores.loc[(scores["method"] != DENSE) & (scores["sparsity"] > 0), "sparsity"].unique())
    return float(min(levels, key=lambda s: (abs(s - target), -s))) if levels else None


def plot_iqm_bars(scores: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path, sparsity: float | None = None,
                  reps: int = 2000, seed: int = 0, group_cols: Sequence[str] | None = None) -> Path:
    """IQM of normalised final scores per method at one sparsity, per env and over all envs (Graesser Fig 1).

    ``scores``: per-run final scores (:func:`stats.final_scores`, with runs.csv columns);
    every scored run counts, diverged ones too. Normalised by the full-dense mean of each env and network width
    (so full dense ~ 1); envs whose dense mean is missing or <= 0 are not drawn, and the x label
    names them. ``sparsity`` defaults to the run sparsity closest to 0.9. "All envs" pools every
    drawn env's runs, resampling within each env.
    """
    if scores is None or scores.empty or "final_score" not in scores.columns:
        raise SkipPlot("no per-run final scores")
    df = st.normalize_scores(scores)
    drawn = df["normalized_score"].notna()
    not_drawn = sorted(set(df.loc[~drawn, "env"]) - set(df.loc[drawn, "env"]), key=str)
    df = df[drawn]
    if df.empty:
        raise SkipPlot("no env has scored full-dense runs with a positive mean return to normalise by")
    target = _closest_sparsity(df, 0.9) if sparsity is None else float(sparsity)
    if target is None:
        raise SkipPlot("no sparse runs in the envs that can be normalised")
    sel = df[(df["method"] == DENSE) | np.isclose(df["sparsity"], target)]
    if not (sel["method"] != DENSE).any():
        raise SkipPlot(f"no runs at sparsity {target}")
    style = Style(sel, _group_cols(runs, group_cols))
    envs = sorted(sel["env"].unique(), key=str)
    groups = envs + (["All envs"] if len(envs) > 1 else [])
    row_key = style.keys(sel)
    keys = sorted(set(row_key), key=style.sort_key)
    fig = figure(1, 1, panel=(min(20.0, max(6.5, 1.2 + len(groups) * (0.28 * len(keys) + 0.5))), 4.8))[0]
    ax = fig.axes[0]
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        per_env = {env: sel.loc[(row_key == k) & (sel["env"] == env), "normalized_score"].to_numpy(float) for env in envs}
        per_env["All envs"] = [v for v in per_env.values() if v.size]
        xs, ys, err = [], [], [[], []]
        for j, name in enumerate(groups):
            if not len(per_env[name]):
                continue
            p, lo, hi = st.iqm_ci(per_env[name], reps=reps, seed=seed)
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(p)
            err[0].append(max(p - lo, 0.0))
            err[1].append(max(hi - p, 0.0))
        ax.bar(xs, ys, width=width * 0.92, color=method_color(k[0]), alpha=0.85, hatch=style.hatch(k),
               edgecolor="white", linewidth=0.5)
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
    ax.axhline(1.0, color="black", lw=0.8, linestyle=":")
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    xlabel = "Environment" + (f"\n(not drawn, no positive full-dense mean to normalise by: "
                              f"{', '.join(map(str, not_drawn))})" if not_drawn else "")
    _finish(ax, "", xlabel, "Normalised final return\n(IQM; 1 = full-dense mean)")
    fig.suptitle(f"{agent_prefix(sel)}IQM at {pct(target)} sparsity, 95% stratified-bootstrap CI")
    style.legend(fig, keys, bars=True)
    return save(fig, path)


# ----------------------------------------------------------- metrics over training
def metric_columns(results: pd.DataFrame, metric: str) -> list[str]:
    """``metric`` and its per-network columns ``metric_<network>`` (actor-critic agents)."""
    return [c for c in results.columns if c == metric or c.startswith(f"{metric}_")]


def plot_metric_over_training(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                              metric: str, ylabel: str, title: str, scale: float = 1.0,
                              max_levels: int = 3, group_cols: Sequence[str] | None = None,
                              panel_names: Mapping[str, str] | None = None) -> Path:
    """A per-evaluation metric vs steps: colour by method, line style by sparsity (a single
    sparsity is named in the title instead), a panel per env (x bias on/off where ``use_bias``
    was swept) x column (``metric`` and each ``metric_<suffix>`` present, e.g. per network;
    titled by ``panel_names``, by default "all networks" and the suffix); other swept values
    get markers.
    Mean over seeds, no band (many lines share a panel); panels share the y axis. With more
    than ``max_levels`` sparsities, the lowest, the one closest to 90% and the highest are drawn.
    """
    if results is None or results.empty or metric not in results.columns:
        raise SkipPlot(f"results have no {metric} column")
    df = merge_runs(results, runs)
    cols = [c for c in metric_columns(df, metric) if pd.to_numeric(df[c], errors="coerce").notna().any()]
    if not cols:
        raise SkipPlot(f"no {metric} values recorded")
    df = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") * scale for c in cols})
    gcols = _group_cols(runs, group_cols)
    all_levels = sorted(df.loc[df["method"] != DENSE, "sparsity"].unique())
    levels = _pick_levels(all_levels, max_levels)
    df = df[(df["method"] == DENSE) | df["sparsity"].isin(levels)]
    per_run = df.drop_duplicates("run")
    single = len(levels) == 1  # every line solid: the title names the sparsity, not a legend entry
    style = Style(per_run, gcols, levels=() if single else levels, level_label=lambda s: f"{pct(s)} sparse",
                  bias_in_panels=True)
    df, lines = _line_ids(df, per_run, style)
    names = {metric: "all networks", **{c: c[len(metric) + 1:] for c in cols if c != metric}, **(panel_names or {})}
    splits = [(names[c], c, None) for c in cols] if len(cols) > 1 else [("", metric, None)]
    groups = panels(df, bias=style.bias_panels, splits=splits)
    fig, axes = figure(len(groups), ncols=len(cols) if len(cols) > 1 else (2 if style.bias_panels else 3),
                       panel=(5.2, 3.6), sharey=True)
    for ax, (name, col, e) in zip(axes, groups):
        for (i, s), g in e.groupby(["_line", "sparsity"]):
            cur = g.groupby("step")[col].mean().dropna()
            ax.plot(cur.index, cur.to_numpy(), lw=1.6, ms=4, markevery=max(1, len(cur) // 6),
                    **style.line(lines[i], level=s))
        _finish(ax, name, "Environment steps", ylabel, steps=True)
    shown = "" if levels == all_levels else f" (sparsities shown: {', '.join(map(pct, levels))})"
    if single:
        shown = f", sparsity {pct(levels[0])}"
    fig.suptitle(f"{agent_prefix(df)}{title}: mean over seeds{shown}")
    style.legend(fig, lines)
    return save(fig, path)


def plot_dormant(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                 group_cols: Sequence[str] | None = None, tau: float | None = None) -> Path:
    """Dormant-neuron fraction over training (Ganaie Fig 2): colour by method, style by sparsity,
    per network for actor-critic agents. tau: the sweep's dormancy threshold (in the label)."""
    threshold = f", \u03c4 = {tau:g}" if tau is not None else ""
    return plot_metric_over_training(results, runs, path, metric="dormant_frac", scale=100.0, group_cols=group_cols,
                                     ylabel=f"Dormant neurons{threshold} (% of hidden units)",
                                     title="dormant neurons over training")


# ---------------------------------------------------------------------- robustness
def plot_robustness(robustness_df: pd.DataFrame, runs: pd.DataFrame, path: str | Path, max_levels: int = 3,
                    group_cols: Sequence[str] | None = None) -> Path:
    """Return vs observation-noise sigma per method and parameter budget (Graesser Fig 6).

    ``robustness_df`` has columns ``run, sigma, eval_return`` (several rows per (run, sigma)
    are averaged first) and is joined with runs.csv. Parameter budget = 1 - sparsity (100% for
    full dense): line style by budget, colour by method, panel per env (x bias on/off where
    swept); mean over seeds +-1 std. With more than ``max_levels`` sparse budgets, those at the
    lowest sparsity, the one closest to 90% and the highest are drawn. Other swept
    hyperparameters are pooled (filter ``runs`` first to compare them).
    """
    need = {"run", "sigma", "eval_return"}
    if robustness_df is None or robustness_df.empty or not need <= set(robustness_df.columns):
        raise SkipPlot(f"robustness table empty or lacks columns {sorted(need)}")
    if runs is None or runs.empty:
        raise SkipPlot("runs.csv needed to know each run's method and sparsity")
    r = robustness_df.groupby(["run", "sigma"], as_index=False)["eval_return"].mean()
    r = r.merge(runs, on="run", how="inner")
    if r.empty:
        raise SkipPlot("no robustness rows match a run in runs.csv")
    all_levels = sorted(r.loc[r["method"] != DENSE, "sparsity"].unique())
    levels = _pick_levels(all_levels, max_levels)
    r = r[(r["method"] == DENSE) | r["sparsity"].isin(levels)]
    r = r.assign(budget=np.where(r["method"] == DENSE, 1.0, 1.0 - r["sparsity"].astype(float)))
    budgets = sorted(r["budget"].unique(), reverse=True)
    style = Style(r, [c for c in _group_cols(runs, group_cols) if c == "use_bias"], levels=budgets,
                  level_label=lambda b: f"{pct(b)} params", bias_in_panels=True)
    groups = panels(r, bias=style.bias_panels)
    fig, axes = figure(len(groups), ncols=2 if style.bias_panels else 3)
    for ax, (title, _, e) in zip(axes, groups):
        for (m, b), g in sorted(e.groupby(["method", "budget"]), key=lambda kv: (method_rank(kv[0][0]), -kv[0][1])):
            by_sigma = g.groupby("sigma")["eval_return"]
            mu, sd = by_sigma.mean(), by_sigma.std(ddof=1).fillna(0.0)
            sty = style.line((m, False, ()), level=b)
            ax.plot(mu.index, mu.to_numpy(), color=sty["color"], linestyle=sty["linestyle"], marker="o", ms=3.5, lw=1.6)
            ax.fill_between(mu.index, mu - sd, mu + sd, color=sty["color"], alpha=0.10, lw=0)
        _finish(ax, title, "Observation noise sigma (std of N(0, sigma) added\nto observations; Atari: raw 0-255 pixels)",
                "Evaluation return")
    shown = "" if levels == all_levels else f" (budgets shown: {', '.join(pct(1 - s) for s in levels)})"
    fig.suptitle(f"{agent_prefix(r)}robustness to observation noise at evaluation: mean over seeds, shaded +-1 std{shown}")
    style.legend(fig, {(m, False, ()) for m in r["method"].unique()})
    return save(fig, path)
