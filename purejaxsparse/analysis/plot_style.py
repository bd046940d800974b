"""The one look of every figure, and the figure scaffolding the plots share.

:class:`Style` maps a run (or group) to its look: colour = method (the same in every figure),
line style = bias off dashed (where ``use_bias`` was swept and shares a panel) or, in figures
over training, the sparsity level; marker (bars: hatch) = the other swept hyperparameters.
Legends are factored the same way: one entry per method, per line style, per marker.
Which hyperparameters were swept comes from runs.csv (:func:`.stats.group_columns`).
:func:`panels` splits a table into one panel per env (x bias on/off, x a further split).
Built on matplotlib's Agg canvas (no pyplot), so safe to import anywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..results import METHODS
from .stats import BASE_GROUP_COLUMNS

METHOD_COLORS = dict(zip(METHODS, ("black", "tab:gray", "tab:blue", "tab:green", "tab:red", "tab:purple")))
METHOD_LABELS = dict(zip(METHODS, ("Dense (full)", "Dense (param-matched)", "Static", "SET", "RigL", "Pruning")))
_SPARE_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_LEVEL_STYLES = ("-", "--", ":", "-.")
_HATCHES = ("", "..", "xx", "oo", "++", "\\\\", "**")
AXES = BASE_GROUP_COLUMNS + ("use_bias",)
"""Group columns drawn as panels, x axes, colours or bias line styles; the rest are variants."""


class SkipPlot(Exception):
    """A figure's data is missing; the message says what is missing."""


def method_color(method: str) -> str:
    """Fixed colour of a method, the same in every figure."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _SPARE_COLORS[sum(map(ord, str(method))) % len(_SPARE_COLORS)]


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, str(method))


def method_rank(m: str) -> tuple[int, str]:
    """Sort key of methods: the order of :data:`purejaxsparse.results.METHODS`, unknown ones last."""
    return (METHODS.index(m) if m in METHODS else len(METHODS), str(m))


def is_off(v: Any) -> bool:
    """True when a use_bias value means 'bias off' (False/0/'false'); NaN counts as on."""
    if isinstance(v, str):
        return v.strip().lower() in ("false", "0", "no", "off")
    try:
        return (not pd.isna(v)) and not bool(v)
    except (TypeError, ValueError):
        return False


def fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def pct(x: float) -> str:
    return f"{100 * x:.3g}%"


class Style:
    """Colour, line style, marker/hatch and legend of the lines (or bars) of one figure.

    ``table``: the runs or groups drawn (with the ``group_cols`` columns). ``levels``: values
    drawn as line styles (e.g. sparsities), with ``level_label`` naming them in the legend;
    without levels, bias off is dashed when ``use_bias`` is a group column and
    ``bias_in_panels`` is False.
    """

    def __init__(self, table: pd.DataFrame, group_cols: Sequence[str], levels: Iterable = (),
                 level_label: Callable[[Any], str] = str, bias_in_panels: bool = False):
        levels = list(levels)
        self.vcols = [c for c in group_cols if c not in AXES and c in table.columns]
        self.bias = "use_bias" in group_cols and not bias_in_panels and not levels
        self.bias_panels = "use_bias" in group_cols and bias_in_panels
        # variants with a value: a marker each (10 shapes, then hollow); all-None ("does not
        # apply", e.g. dense's actor_sparsity) gets none
        variants = {self.variant(r) for _, r in table.iterrows()} if self.vcols else set()
        self.variants = {v: i for i, v in enumerate(sorted((v for v in variants if any(x is not None for x in v)),
                                                           key=str))}
        self.levels = {lvl: _LEVEL_STYLES[i % len(_LEVEL_STYLES)] for i, lvl in enumerate(levels)}
        self.level_label = level_label

    def variant(self, row: Any) -> tuple:
        return tuple(None if pd.isna(row[c]) else row[c] for c in self.vcols)

    def key(self, row: Any) -> tuple:
        """(method, bias off, variant) of a run or group: rows with one key share a line."""
        return (row["method"], self.bias and is_off(row.get("use_bias", True)), self.variant(row))

    def keys(self, table: pd.DataFrame) -> pd.Series:
        return table.apply(self.key, axis=1) if len(table) else pd.Series([], dtype=object)

    def sort_key(self, key: tuple):
        return (method_rank(key[0]), key[1], str(key[2]))

    def marker(self, var: tuple) -> dict:
        """marker and markerfacecolor of a variant (none for no variant)."""
        if var not in self.variants:
            return dict(marker=None, markerfacecolor=None)
        i = self.variants[var]
        return dict(marker=_MARKERS[i % len(_MARKERS)], markerfacecolor="none" if (i // len(_MARKERS)) % 2 else None)

    def line(self, key: tuple, level: Any = None) -> dict:
        """matplotlib keywords of a line: color, linestyle, marker, markerfacecolor."""
        method, off, var = key
        if level is not None and self.levels:
            ls = "-" if method == METHODS[0] else self.levels.get(level, "-")
        else:
            ls = "--" if off else "-"
        return dict(color=method_color(method), linestyle=ls, **self.marker(var))

    def hatch(self, key: tuple) -> str | None:
        _, off, var = key
        return (("///" if off else "") + _HATCHES[self.variants.get(var, 0) % len(_HATCHES)]) or None

    def variant_text(self, var: tuple) -> str:
        return ", ".join(f"{c}={fmt(v)}" for c, v in zip(self.vcols, var))

    def legend(self, fig: Figure, keys: Iterable[tuple], bars: bool = False) -> None:
        """Legend in factors: colour = method, line style = bias or level, marker/hatch = variant."""
        keys = list(keys)
        methods = sorted({k[0] for k in keys}, key=method_rank)
        if bars:
            handles = [Patch(color=method_color(m), label=method_label(m)) for m in methods]
            if self.bias:
                handles += [Patch(facecolor="white", edgecolor="dimgray", hatch="///", label="bias off")]
            if self.vcols:
                handles += [Patch(facecolor="white", edgecolor="dimgray", hatch=_HATCHES[i % len(_HATCHES)],
                                  label=self.variant_text(v)) for v, i in self.variants.items()]
        else:
            handles = [Line2D([], [], color=method_color(m), lw=2, label=method_label(m)) for m in methods]
            if self.bias:
                handles += [Line2D([], [], color="dimgray", lw=1.6, linestyle=ls, label=lab)
                            for lab, ls in (("bias on", "-"), ("bias off", "--"))]
            handles += [Line2D([], [], color="dimgray", lw=1.6, linestyle=ls, label=self.level_label(lvl))
                        for lvl, ls in self.levels.items()]
            if self.vcols:
                handles += [Line2D([], [], color="dimgray", lw=0, **self.marker(v), label=self.variant_text(v))
                            for v in self.variants]
        longest = max(len(h.get_label()) for h in handles)
        ncol = max(1, min(6, len(handles), int(fig.get_figwidth() / (0.9 + 0.075 * longest))))
        rows = -(-len(handles) // ncol)
        fig.set_figheight(fig.get_figheight() + 0.22 * max(0, rows - 2))  # a long legend adds height, not squeezes the axes
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)


def panels(df: pd.DataFrame, bias: bool = False,
           splits: Sequence[tuple[str, Any, Callable[[pd.DataFrame], pd.Series] | None]] = (("", None, None),)
           ) -> list[tuple[str, Any, pd.DataFrame]]:
    """``(title, tag, rows)`` per panel: one per env, x bias on/off when ``bias``, x each
    ``(label, tag, select)`` of ``splits`` (``select(rows)`` -> a boolean mask, None: all rows)."""
    out = []
    for env in sorted(df["env"].unique(), key=str):
        e = df[df["env"] == env]
        for off in ((False, True) if bias else (None,)):
            b = e if off is None else e[e["use_bias"].map(is_off) == off]
            for label, tag, select in splits:
                rows = b if select is None else b[select(b)]
                title = [str(env)] + ([] if off is None else ["bias off" if off else "bias on"]) + ([label] if label else [])
                out.append((", ".join(title), tag, rows))
    return out


def figure(n_panels: int, ncols: int, panel: tuple[float, float] = (5.0, 3.6), sharey: bool = False):
    """A constrained-layout figure with ``n_panels`` axes in rows of ``ncols`` (Agg canvas)."""
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


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.15)
    return path


def sparsity_axis(ax: Any, xs: Iterable[float]) -> None:
    """Logit x scale (spreads 50%..99%) with a tick at every sparsity present."""
    xs = sorted({float(x) for x in xs})
    if len(xs) >= 2 and all(0 < x < 1 for x in xs):
        ax.set_xscale("logit")
        pad = 0.25
        lo, hi = np.log(xs[0] / (1 - xs[0])), np.log(xs[-1] / (1 - xs[-1]))
        ax.set_xlim(1 / (1 + np.exp(-(lo - pad))), 1 / (1 + np.exp(-(hi + pad))))
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: pct(v)))
    ax.xaxis.set_minor_locator(NullLocator())


def dodge(xs: np.ndarray, i: int, n: int, step: float = 0.08) -> np.ndarray:
    """Sparsities shifted sideways (in logit space) for the i-th of n lines, so that error bars
    at the same sparsity do not hide each other."""
    xs = np.asarray(xs, float)
    inside = (xs > 0) & (xs < 1)
    logit = np.log(np.where(inside, xs, 0.5) / (1 - np.where(inside, xs, 0.5))) + (i - (n - 1) / 2) * step
    return np.where(inside, 1 / (1 + np.exp(-logit)), xs)


def agent_prefix(df: pd.DataFrame) -> str:
    if "agent" in df.columns and df["agent"].nunique() == 1:
        return f"{str(df['agent'].iloc[0]).upper()}: "
    return ""


def merge_runs(results: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """results joined with runs.csv's per-run hyperparameters (results' own columns win)."""
    if runs is None:
        return results
    extra = [c for c in runs.columns if c == "run" or c not in results.columns]
    return results.merge(runs[extra], on="run", how="left")
