"""The papers' figures as PNG files, from the sweep's tables.

Every public ``plot_*`` function takes DataFrames and an output path and returns the path
it wrote, or ``None`` when the data for that figure is missing (the reason is logged at
INFO level; :func:`try_plot` also hands it back). Figures are built on matplotlib's Agg
canvas directly (no pyplot, no global backend switch), so this module is safe to import
anywhere and never opens a window.

Styling is shared by all figures: one colour per method (:data:`METHOD_COLORS`), bias off
drawn dashed (bias on solid) where ``use_bias`` was swept, and any other swept
hyperparameter named in the legend label with its own marker.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, NullLocator

from . import stats as st

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

METHOD_ORDER = ("dense", "dense_width", "static", "set", "rigl", "prune")
METHOD_COLORS = {
    "dense": "black",
    "dense_width": "tab:gray",
    "static": "tab:blue",
    "set": "tab:green",
    "rigl": "tab:red",
    "prune": "tab:purple",
}
METHOD_LABELS = {
    "dense": "Dense (full)",
    "dense_width": "Dense (param-matched)",
    "static": "Static",
    "set": "SET",
    "rigl": "RigL",
    "prune": "Pruning",
}
_SPARE_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_LEVEL_STYLES = ("-", "--", ":", "-.")
_VARIANT_HATCHES = ("", "..", "xx", "oo", "++", "\\\\", "**")
# Columns that are never "variants" of a line: they are axes/panels/colour/style already.
_NOT_VARIANT = ("run", "env", "agent", "method", "sparsity", "seed", "use_bias")


class SkipPlot(Exception):
    """Raised inside a plot when its data is missing; the public wrapper logs and returns None."""


def method_color(method: str) -> str:
    """Fixed colour of a method, the same in every figure."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _SPARE_COLORS[sum(map(ord, str(method))) % len(_SPARE_COLORS)]


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, str(method))


def _method_rank(m: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), str(m))


def _graceful(fn: Callable[..., Path]) -> Callable[..., Path | None]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SkipPlot as e:
            log.info("%s skipped: %s", fn.__name__, e)
            return None

    return wrapper


def try_plot(fn: Callable[..., Any], *args, **kwargs) -> tuple[Path | None, str | None]:
    """Call a public plot function; return ``(path, None)`` or ``(None, reason it was skipped)``."""
    inner = getattr(fn, "__wrapped__", fn)
    try:
        return inner(*args, **kwargs), None
    except SkipPlot as e:
        log.info("%s skipped: %s", fn.__name__, e)
        return None, str(e)


# ------------------------------------------------------------------------- helpers
def _is_off(v: Any) -> bool:
    """True when a use_bias value means 'bias off' (False/0/'false'); NaN counts as on."""
    if isinstance(v, str):
        return v.strip().lower() in ("false", "0", "no", "off")
    try:
        return (not pd.isna(v)) and not bool(v)
    except (TypeError, ValueError):
        return False


def _bias_swept(df: pd.DataFrame) -> bool:
    return "use_bias" in df.columns and df["use_bias"].map(_is_off).nunique() > 1


# Per-run outputs and statistics: never hyperparameters.
_NOT_HPARAM = ("total_params", "active_params", "final_score", "normalized_score", "dense_reference", "n_evals",
               "last_step", "k", "complete", "final_actual_sparsity", "final_dormant_frac", "step", "eval_return")


def _variant_cols(df: pd.DataFrame, candidates: Iterable[str] | None = None) -> list[str]:
    """Hyperparameter columns that take several values among runs of one (env, method, sparsity, bias) cell.

    That is how a swept hyperparameter shows up; a per-method default (e.g. a different
    update interval for SET and RigL) does not vary inside a cell and is not a variant.
    """
    cols = [c for c in (candidates if candidates is not None else df.columns)
            if c in df.columns and c not in _NOT_VARIANT and c not in _NOT_HPARAM]
    cell = [c for c in ("env", "agent", "method", "sparsity", "use_bias") if c in df.columns]
    if not cols or df.empty:
        return []
    counts = df.groupby(cell, dropna=False)[cols].nunique(dropna=False).max()
    return [c for c in cols if counts[c] > 1]


def _given_variants(group_cols: Sequence[str] | None) -> list[str] | None:
    """Variant candidates from explicit group columns (None: detect from the data)."""
    return None if group_cols is None else [c for c in group_cols if c not in _NOT_VARIANT]


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


class _Styler:
    """Maps (method, bias, variant) keys to a label, colour, line style and marker."""

    def __init__(self, df: pd.DataFrame, variant_cols: Sequence[str]):
        self.bias = _bias_swept(df)
        self.vcols = list(variant_cols)
        variants = sorted({self.variant(r) for _, r in df.iterrows()}, key=str) if self.vcols else [()]
        self.marker = {v: _MARKERS[i % len(_MARKERS)] for i, v in enumerate(variants)}

    def index(self, variant: tuple) -> int:
        """Position of a variant among all variants (for hatches/markers)."""
        return list(self.marker).index(variant) if variant in self.marker else 0

    def variant(self, row: Any) -> tuple:
        return tuple(None if pd.isna(row[c]) else row[c] for c in self.vcols)

    def key(self, row: Any) -> tuple:
        off = self.bias and _is_off(row.get("use_bias", True))
        return (row["method"], off, self.variant(row))

    def label(self, key: tuple, extra: str = "") -> str:
        method, off, var = key
        s = method_label(method) + extra
        if self.bias:
            s += ", no bias" if off else ", bias"
        if self.vcols:
            s += " [" + ", ".join(f"{c}={_fmt(v)}" for c, v in zip(self.vcols, var)) + "]"
        return s

    def style(self, key: tuple) -> dict:
        method, off, var = key
        return dict(color=method_color(method), linestyle="--" if off else "-", marker=self.marker.get(var, "o"))

    def sort_key(self, key: tuple):
        return (_method_rank(key[0]), key[1], str(key[2]))


def _figure(n_panels: int, ncols: int, panel: tuple[float, float] = (5.0, 3.6), sharey: bool = False):
    ncols = max(1, min(ncols, n_panels))
    if n_panels == 1:
        panel = (max(panel[0], 7.0), max(panel[1], 4.6))
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _legend(fig: Figure, axes: Sequence[Any], extra: Sequence[tuple[Any, str]] = ()) -> None:
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if not lab.startswith("_") and lab not in seen:
                seen[lab] = h
    for h, lab in extra:
        seen.setdefault(lab, h)
    if seen:
        width = fig.get_figwidth()
        longest = max(len(lab) for lab in seen)
        ncol = max(1, min(4, len(seen), int(width / (0.9 + 0.075 * longest))))
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncol=ncol, frameon=False)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.15)
    return path


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def _sparsity_axis(ax: Any, xs: Iterable[float]) -> None:
    """Logit x scale (spreads 50%..99%) with a tick at every sparsity present."""
    xs = sorted({float(x) for x in xs})
    if len(xs) >= 2 and all(0 < x < 1 for x in xs):
        ax.set_xscale("logit")
        pad = 0.25
        lo, hi = np.log(xs[0] / (1 - xs[0])), np.log(xs[-1] / (1 - xs[-1]))
        ax.set_xlim(1 / (1 + np.exp(-(lo - pad))), 1 / (1 + np.exp(-(hi + pad))))
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _pct(v)))
    ax.xaxis.set_minor_locator(NullLocator())


def _agent(df: pd.DataFrame) -> str:
    if "agent" in df.columns and df["agent"].nunique() == 1:
        return f"{str(df['agent'].iloc[0]).upper()}: "
    return ""


def _merge_runs(results: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """results joined with runs.csv's per-run hyperparameters (results' own columns win)."""
    if runs is None:
        return results
    extra = [c for c in runs.columns if c == "run" or c not in results.columns]
    return results.merge(runs[extra], on="run", how="left")


# ---------------------------------------------------------- final score vs sparsity
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
