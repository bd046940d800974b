"""The papers' figures as PNG files, from the sweep's tables.

Every public ``plot_*`` function takes DataFrames and an output path and returns the path
it wrote, or ``None`` when the data for that figure is missing (the reason is logged at
INFO level; :func:`try_plot` also hands it back). Figures are built on matplotlib's Agg
canvas directly (no pyplot, no global backend switch), so this module is safe to import
anywhere and never opens a window.

Styling is shared by all figures and lives in :mod:`.plot_style` (colours per method, markers
and line styles for swept hyperparameters, graceful skipping of missing data).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from . import stats as st
# re-exported too (plots.try_plot, plots.method_color, ...): the styling lives in plot_style
from .plot_style import (  # noqa: F401
    METHOD_COLORS, METHOD_LABELS, SkipPlot, _LEVEL_STYLES, _MARKERS, _NOT_VARIANT, _Styler,
    _VARIANT_HATCHES, _agent, _bias_swept, _figure, _fmt, _given_variants, _graceful, _is_off,
    _legend, _merge_runs, _method_rank, _pct, _save, _sparsity_axis, _variant_cols,
    method_color, method_label, try_plot,
)

log = logging.getLogger(__name__)

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "method_color",
    "method_label",
    "try_plot",
    "plot_score_vs_sparsity",
    "plot_learning_curves",
    "plot_iqm_bars",
    "plot_metric_over_training",
    "plot_dormant",
    "plot_robustness",
]

@_graceful
def plot_score_vs_sparsity(summary: pd.DataFrame, path: str | Path, value: str = "iqm",
                           group_cols: Sequence[str] | None = None) -> Path:
    """Final return vs sparsity per env (Graesser Fig 2 / Ganaie Fig 1).

    One line per sparse method with its 95% CI band; full dense as a horizontal line with
    its band; param-matched dense (``dense_width``) as a line over sparsity, or a horizontal
    line when run at one sparsity. Bias off is dashed. ``summary`` is :func:`stats.summarize`'s
    output; ``value`` is ``"iqm"`` or ``"norm_iqm"`` (CI columns follow the prefix).
    ``group_cols`` defaults to the summary's leading columns (those before ``n_runs``).
    """
    need = {"env", "method", "sparsity", value}
    if summary is None or summary.empty or not need <= set(summary.columns):
        raise SkipPlot(f"summary lacks rows or columns {sorted(need)}")
    pre = value[: -len("iqm")]
    lo_c, hi_c = f"{pre}ci_low", f"{pre}ci_high"
    df = summary[summary[value].notna()]
    if df.empty:
        raise SkipPlot(f"no group has a {value} value yet")
    if not (df["method"] != st.DENSE).any():
        raise SkipPlot("only full-dense runs: nothing to plot against sparsity")
    styler = _Styler(df, _variant_cols(df, group_cols if group_cols is not None else _summary_group_cols(df)))
    envs = sorted(df["env"].unique(), key=str)
    fig, axes = _figure(len(envs), ncols=3)
    for ax, env in zip(axes, envs):
        e = df[df["env"] == env]
        line_keys: dict[tuple, list] = {}
        for _, r in e.iterrows():
            line_keys.setdefault(styler.key(r), []).append(r)
        xs_all = [r["sparsity"] for k, rs in line_keys.items() if k[0] != st.DENSE for r in rs]
        for key in sorted(line_keys, key=styler.sort_key):
            g = pd.DataFrame(line_keys[key]).sort_values("sparsity")
            sty = styler.style(key)
            horizontal = key[0] == st.DENSE or (key[0] == "dense_width" and g["sparsity"].nunique() == 1)
            if horizontal:
                for _, r in g.iterrows():
                    extra = "" if key[0] == st.DENSE else f" at {_pct(1 - r['sparsity'])} params"
                    ax.axhline(r[value], color=sty["color"], linestyle=sty["linestyle"], lw=1.6)
                    ax.axhspan(r[lo_c], r[hi_c], color=sty["color"], alpha=0.10, lw=0)
                    # the same level drawn through the sparsities present, carrying the
                    # variant marker (if any) and the legend entry
                    xs = sorted(set(xs_all)) or [0.5]
                    ax.plot(xs, [r[value]] * len(xs), color=sty["color"], linestyle=sty["linestyle"], lw=1.6,
                            marker=sty["marker"] if styler.vcols else None, ms=5, label=styler.label(key, extra))
            else:
                ax.plot(g["sparsity"], g[value], lw=1.8, ms=5, label=styler.label(key), **sty)
                ax.fill_between(g["sparsity"], g[lo_c], g[hi_c], color=sty["color"], alpha=0.15, lw=0)
        _sparsity_axis(ax, xs_all)
        ax.set_title(str(env))
        ax.set_xlabel("Sparsity (% of weights removed)")
        ax.set_ylabel("Normalised final return" if pre else "Final return (episode return)")
        ax.grid(alpha=0.3)
    n = df["n_scored"] if "n_scored" in df.columns else None
    seeds = f" over {int(n.min())}-{int(n.max())} seeds" if n is not None and n.min() != n.max() else (
        f" over {int(n.iloc[0])} seeds" if n is not None else "")
    fig.suptitle(f"{_agent(df)}final return vs sparsity: IQM{seeds}, shaded 95% bootstrap CI")
    _legend(fig, axes)
    return _save(fig, path)


# --------------------------------------------------------------- learning curves
@_graceful
def plot_learning_curves(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                         metric: str = "eval_return", group_cols: Sequence[str] | None = None) -> Path:
    """Evaluation return vs environment steps, one panel per (env, sparsity).

    Lines are the mean over seeds with a +-1 std band (the band narrows to the seeds that
    reached a step, so a running sweep shows its tail on fewer seeds). Full dense is drawn
    in every panel of its env as the reference; param-matched dense in the panel of its
    sparsity. ``group_cols`` (e.g. :func:`stats.group_columns`) names the swept columns that
    split lines; by default they are detected from runs.csv.
    """
    if results is None or results.empty or metric not in results.columns:
        raise SkipPlot(f"no results with a {metric} column")
    df = _merge_runs(results, runs)
    df = df[df[metric].notna()]
    if df.empty:
        raise SkipPlot(f"no {metric} values")
    per_run = df.drop_duplicates("run")
    styler = _Styler(per_run, _variant_cols(per_run, _given_variants(group_cols)))
    df = df.assign(_key=df["run"].map({r["run"]: styler.key(r) for _, r in per_run.iterrows()}))
    sparse_levels = sorted(df.loc[df["method"] != st.DENSE, "sparsity"].unique())
    envs = sorted(df["env"].unique(), key=str)
    panels = [(env, s) for env in envs for s in (sparse_levels or [0.0])]
    ncols = len(sparse_levels) if 1 <= len(sparse_levels) <= 6 else 4  # a row per env when it fits
    fig, axes = _figure(len(panels), ncols=ncols, panel=(4.4, 3.2))
    for ax, (env, s) in zip(axes, panels):
        e = df[(df["env"] == env) & ((df["sparsity"] == s) | (df["method"] == st.DENSE))]
        if e.empty:
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center")
        for key in sorted(e["_key"].unique(), key=styler.sort_key):
            g = e[e["_key"] == key].groupby("step")[metric]
            m, sd = g.mean(), g.std(ddof=1).fillna(0.0)
            sty = styler.style(key)
            ax.plot(m.index, m.to_numpy(), lw=1.5, color=sty["color"], linestyle=sty["linestyle"],
                    marker=sty["marker"] if styler.vcols else None, ms=3, markevery=max(1, len(m) // 8),
                    label=styler.label(key))
            ax.fill_between(m.index, m - sd, m + sd, color=sty["color"], alpha=0.12, lw=0)
        ax.set_title(f"{env}, sparsity {_pct(s)}" if sparse_levels else f"{env}")
        ax.set_xlabel("Environment steps")
        ax.set_ylabel("Evaluation return")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    fig.suptitle(f"{_agent(df)}learning curves: mean over seeds, shaded +-1 std")
    _legend(fig, axes)
    return _save(fig, path)


def _summary_group_cols(summary: pd.DataFrame) -> list[str]:
    cols = list(summary.columns)
    return cols[: cols.index("n_runs")] if "n_runs" in cols else [c for c in cols if c in _NOT_VARIANT]


# -------------------------------------------------------------------- IQM bars
def _closest_sparsity(scores: pd.DataFrame, target: float) -> float | None:
    levels = sorted(scores.loc[(scores["method"] != st.DENSE) & (scores["sparsity"] > 0), "sparsity"].unique())
    if not levels:
        return None
    return float(min(levels, key=lambda s: (abs(s - target), -s)))


@_graceful
def plot_iqm_bars(scores: pd.DataFrame, path: str | Path, sparsity: float | None = None,
                  reps: int = 2000, seed: int = 0, group_cols: Sequence[str] | None = None) -> Path:
    """IQM of normalised final scores per method at one sparsity, per env and over all envs (Graesser Fig 1).

    ``scores``: per-run final scores (:func:`stats.final_scores`, with runs.csv columns).
    Normalised by each env's full-dense mean (so full dense ~ 1); envs whose dense mean is
    missing or <= 0 are left out. ``sparsity`` defaults to the run sparsity closest to 0.9.
    "All envs" pools every env's normalised runs, resampling runs within each env.
    """
    if scores is None or scores.empty or "final_score" not in scores.columns:
        raise SkipPlot("no per-run final scores")
    df = st.normalize_scores(scores)
    df = df[df["normalized_score"].notna()]
    if df.empty:
        raise SkipPlot("no env has scored full-dense runs with a positive mean return to normalise by")
    target = _closest_sparsity(df, 0.9) if sparsity is None else float(sparsity)
    if target is None:
        raise SkipPlot("no sparse runs in the envs that can be normalised")
    sel = df[(df["method"] == st.DENSE) | np.isclose(df["sparsity"], target)]
    if not (sel["method"] != st.DENSE).any():
        raise SkipPlot(f"no runs at sparsity {target}")
    styler = _Styler(sel, _variant_cols(sel, _given_variants(group_cols)))
    envs = sorted(sel["env"].unique(), key=str)
    groups = envs + (["All envs"] if len(envs) > 1 else [])
    keys = sorted({styler.key(r) for _, r in sel.iterrows()}, key=styler.sort_key)
    row_key = sel.apply(styler.key, axis=1)
    est = {}
    for k in keys:
        per_env = {env: sel.loc[(row_key == k) & (sel["env"] == env), "normalized_score"].to_numpy(float) for env in envs}
        for env in envs:
            est[(k, env)] = st.iqm_ci(per_env[env], reps=reps, seed=seed) + (per_env[env].size,)
        if len(envs) > 1:
            tasks = [v for v in per_env.values() if v.size]
            est[(k, "All envs")] = st.iqm_ci(tasks, reps=reps, seed=seed) + (sum(v.size for v in tasks),)
    fig = Figure(figsize=(min(20.0, max(6.5, 1.2 + len(groups) * (0.28 * len(keys) + 0.5))), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        sty = styler.style(k)
        xs, ys, err = [], [], [[], []]
        for j, gname in enumerate(groups):
            p, lo, hi, n = est.get((k, gname), (np.nan, np.nan, np.nan, 0))
            if n == 0 or np.isnan(p):
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(p)
            err[0].append(p - lo)
            err[1].append(hi - p)
        extra = ("" if k[0] == st.DENSE else f" at {_pct(1 - target)} params" if k[0] == "dense_width"
                 else f" ({_pct(target)} sparse)")
        hatch = ("///" if k[1] else "") + (_VARIANT_HATCHES[styler.index(k[2]) % len(_VARIANT_HATCHES)]
                                           if styler.vcols else "")
        ax.bar(xs, ys, width=width * 0.92, color=sty["color"], alpha=0.85,
               hatch=hatch or None, edgecolor="white", linewidth=0.5,
               label=styler.label(k, extra))
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
    ax.axhline(1.0, color="black", lw=0.8, linestyle=":")
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_xlabel("Environment")
    ax.set_ylabel("Normalised final return\n(IQM; 1 = full-dense mean)")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{_agent(sel)}IQM at {_pct(target)} sparsity, 95% stratified-bootstrap CI")
    _legend(fig, [ax])
    return _save(fig, path)


# ------------------------------------------------------- metrics over training
def _pick_levels(levels: list[float], max_levels: int) -> list[float]:
    """All levels if few, else the lowest, the one closest to 90% and the highest."""
    if len(levels) <= max_levels:
        return levels
    picked = {levels[0], levels[-1], min(levels, key=lambda s: abs(s - 0.9))}
    return sorted(picked)


def _factor_legend(fig: Figure, methods: Iterable[str], styles: Sequence[tuple[str, str]],
                   markers: Sequence[tuple[str, str]] = ()) -> None:
    """Legend in factors: colour = method, line style = level, marker = other swept values."""
    handles = [Line2D([], [], color=method_color(m), lw=2, label=method_label(m))
               for m in sorted(set(methods), key=_method_rank)]
    handles += [Line2D([], [], color="dimgray", lw=1.6, linestyle=ls, label=lab) for lab, ls in styles]
    handles += [Line2D([], [], color="dimgray", lw=0, marker=mk, label=lab) for lab, mk in markers]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), frameon=False)


def _variant_markers(df: pd.DataFrame, vcols: Sequence[str]) -> dict[tuple, str]:
    if not vcols:
        return {(): ""}
    keys = sorted({tuple(None if pd.isna(v) else v for v in row) for row in df[list(vcols)].to_numpy()}, key=str)
    return {k: _MARKERS[i % len(_MARKERS)] for i, k in enumerate(keys)}


def _variant_text(vcols: Sequence[str], var: tuple) -> str:
    return ", ".join(f"{c}={_fmt(v)}" for c, v in zip(vcols, var))


@_graceful
def plot_metric_over_training(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                              metric: str, ylabel: str, title: str, scale: float = 1.0,
                              max_levels: int = 3, group_cols: Sequence[str] | None = None) -> Path:
    """A per-evaluation metric vs steps: colour by method, line style by sparsity, panel per env
    (and per bias setting when ``use_bias`` was swept); other swept values get markers.
    Mean over seeds, no band (many lines share a panel); panels share the y axis.

    With more than ``max_levels`` sparsities only the lowest, the one closest to 90% and the
    highest are drawn (the title says which).
    """
    if results is None or results.empty or metric not in results.columns:
        raise SkipPlot(f"results have no {metric} column")
    df = _merge_runs(results, runs)
    df = df[pd.to_numeric(df[metric], errors="coerce").notna()]
    if df.empty:
        raise SkipPlot(f"no {metric} values recorded")
    df = df.assign(**{metric: pd.to_numeric(df[metric]) * scale})
    bias = _bias_swept(df)
    all_levels = sorted(df.loc[df["method"] != st.DENSE, "sparsity"].unique())
    levels = _pick_levels(all_levels, max_levels)
    df = df[(df["method"] == st.DENSE) | df["sparsity"].isin(levels)]
    ls = {s: _LEVEL_STYLES[i % len(_LEVEL_STYLES)] for i, s in enumerate(levels)}
    vcols = _variant_cols(df.drop_duplicates("run"), _given_variants(group_cols))
    markers = _variant_markers(df, vcols)
    envs = sorted(df["env"].unique(), key=str)
    panels = [(env, off) for env in envs for off in ((False, True) if bias else (None,))]
    fig, axes = _figure(len(panels), ncols=2 if bias else 3, panel=(5.2, 3.6), sharey=True)
    for ax, (env, off) in zip(axes, panels):
        e = df[df["env"] == env]
        if bias:
            e = e[e["use_bias"].map(_is_off) == off]
        groups = e.groupby(["method", "sparsity"] + vcols, dropna=False).groups.items()
        for key, idx in sorted(groups, key=lambda kv: (_method_rank(kv[0][0]), str(kv[0][1:]))):
            m, s, *var = key
            cur = e.loc[idx].groupby("step")[metric].mean()
            mk = markers.get(tuple(None if pd.isna(v) else v for v in var), "")
            ax.plot(cur.index, cur.to_numpy(), color=method_color(m), lw=1.6,
                    linestyle="-" if m == st.DENSE else ls[s],
                    marker=mk or None, ms=4, markevery=max(1, len(cur) // 6))
        ax.set_title(f"{env}" + ("" if off is None else (", bias off" if off else ", bias on")))
        ax.set_xlabel("Environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    shown = "" if levels == all_levels else f" (sparsities shown: {', '.join(map(_pct, levels))})"
    fig.suptitle(f"{_agent(df)}{title}: mean over seeds{shown}")
    _factor_legend(fig, df["method"].unique(), [(f"{_pct(s)} sparse", ls[s]) for s in levels],
                   [(_variant_text(vcols, v), mk) for v, mk in markers.items() if vcols])
    return _save(fig, path)


@_graceful
def plot_dormant(results: pd.DataFrame, runs: pd.DataFrame | None, path: str | Path,
                 group_cols: Sequence[str] | None = None, tau: float | None = None) -> Path:
    """Dormant-neuron fraction over training (Ganaie Fig 2): colour by method, style by sparsity.

    tau: the dormancy threshold the sweep used (shown in the axis label when given)."""
    threshold = f", \u03c4 = {tau:g}" if tau is not None else ""
    return plot_metric_over_training.__wrapped__(
        results, runs, path, metric="dormant_frac", scale=100.0, group_cols=group_cols,
        ylabel=f"Dormant neurons{threshold} (% of hidden units)", title="dormant neurons over training")


# ----------------------------------------------------------------- robustness
@_graceful
def plot_robustness(robustness_df: pd.DataFrame, runs: pd.DataFrame, path: str | Path,
                    max_levels: int = 3) -> Path:
    """Return vs observation-noise sigma per method and parameter budget (Graesser Fig 6).

    ``robustness_df`` has columns ``run, sigma, eval_return`` (several rows per (run, sigma)
    are averaged first) and is joined with runs.csv. Parameter budget = 1 - sparsity
    (100% for full dense): line style by budget, colour by method, panel per env (and per
    bias setting when swept); mean over seeds +-1 std. With more than ``max_levels`` sparse
    budgets, those at the lowest sparsity, the one closest to 90% and the highest are drawn.
    Other swept hyperparameters are pooled (filter ``runs`` first to compare them).
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
    all_levels = sorted(r.loc[r["method"] != st.DENSE, "sparsity"].unique())
    levels = _pick_levels(all_levels, max_levels)
    r = r[(r["method"] == st.DENSE) | r["sparsity"].isin(levels)]
    r = r.assign(budget=np.where(r["method"] == st.DENSE, 1.0, 1.0 - r["sparsity"].astype(float)))
    budgets = sorted(r["budget"].unique(), reverse=True)
    ls = {b: _LEVEL_STYLES[i % len(_LEVEL_STYLES)] for i, b in enumerate(budgets)}
    bias = _bias_swept(r)
    envs = sorted(r["env"].unique(), key=str)
    panels = [(env, off) for env in envs for off in ((False, True) if bias else (None,))]
    fig, axes = _figure(len(panels), ncols=2 if bias else 3)
    for ax, (env, off) in zip(axes, panels):
        e = r[r["env"] == env]
        if bias:
            e = e[e["use_bias"].map(_is_off) == off]
        items = sorted(e.groupby(["method", "budget"]).groups.items(),
                       key=lambda kv: (_method_rank(kv[0][0]), -kv[0][1]))
        for (m, b), idx in items:
            g = e.loc[idx].groupby("sigma")["eval_return"]
            mu, sd = g.mean(), g.std(ddof=1).fillna(0.0)
            ax.plot(mu.index, mu.to_numpy(), color=method_color(m), linestyle=ls[b], marker="o", ms=3.5, lw=1.6)
            ax.fill_between(mu.index, mu - sd, mu + sd, color=method_color(m), alpha=0.10, lw=0)
        ax.set_title(f"{env}" + ("" if off is None else (", bias off" if off else ", bias on")))
        ax.set_xlabel("Observation noise sigma (std of N(0, sigma) added\nto observations; Atari: raw 0-255 pixels)")
        ax.set_ylabel("Evaluation return")
        ax.grid(alpha=0.3)
    shown = "" if levels == all_levels else f" (budgets shown: {', '.join(_pct(1 - s) for s in levels)})"
    fig.suptitle(f"{_agent(r)}robustness to observation noise at evaluation: mean over seeds, shaded +-1 std{shown}")
    _factor_legend(fig, r["method"].unique(), [(f"{_pct(b)} params", ls[b]) for b in budgets])
    return _save(fig, path)
