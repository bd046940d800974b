"""Shared look of the papers' figures: method colours and labels, markers and line styles for
swept hyperparameters, figure/legend/axis helpers, and the graceful skip of a figure whose data
is missing (:class:`SkipPlot`, :func:`try_plot`).

One colour per method (:data:`METHOD_COLORS`), bias off drawn dashed (bias on solid) where
``use_bias`` was swept, and any other swept hyperparameter named in the legend label with its
own marker. Built on matplotlib's Agg canvas (no pyplot), so safe to import anywhere.
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
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

log = logging.getLogger("purejaxsparse.analysis.plots")


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
