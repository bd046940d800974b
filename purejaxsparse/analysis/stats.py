"""Scores and aggregate statistics of a sweep's results table.

Pure numpy/pandas (+ rliable for the bootstrap); never imports jax, so a report can be
made on a machine without an accelerator stack.

Conventions (shared with :mod:`.plots` and :mod:`.report`):

* **Final score of a run** = mean ``eval_return`` over its last ``k = max(1, floor(frac * n))``
  evaluations, where ``n`` is the number of evaluations the run *has* (``frac = 0.1``:
  "mean over the last 10% of evaluations", as in the papers). The original TF code used
  ``returns[-int(0.1 * n):]``, which is the *whole* curve when ``n < 10`` (``-0`` slices
  from the start); we always take at least one and never everything by accident.
  A run that is still going is scored on the evaluations it has so far; ``complete``
  says whether it has all of them.
* **Aggregate of a group** (same env/agent/method/sparsity/swept hyperparameters, seeds
  pooled) = interquartile mean (IQM, 25% trimmed mean) of final scores with a 95%
  percentile stratified-bootstrap CI (rliable). A group with a single scored run gets
  CI = the point estimate (``ci_note`` says so).
* **Normalised score** = score / mean final score of the full-dense runs
  (``method == "dense"``) of the same (env, agent); NaN where that mean is not positive
  (a ratio to a negative or zero return has no "higher is better" reading).
* **Every run counts**: a run that diverged (:func:`purejaxsparse.results.diverged_runs`:
  parameters or loss became non-finite) or is incomplete is scored on the returns it measured
  and counts in every aggregate (IQM, CI, mean, the dense reference) like any other; leaving
  out the runs a method lost would score it on its good seeds only. :func:`summarize` counts
  both per group (``n_diverged``, ``n_incomplete``). Only a run without a finite score (no
  evaluation yet, or every return in its window NaN) has nothing to count.
* **Measured, not planned**: ``final_actual_sparsity`` and ``final_active_params`` are each
  run's last evaluation in results.csv (what its masks were), never runs.csv's plan.
* **Groups** are set by the data (:func:`group_columns`): env, agent, method, sparsity and
  every runs.csv hyperparameter that differs between runs of one (env, agent, method,
  sparsity) cell, i.e. what the sweep varied; seeds are pooled.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from rliable import library as rly

from ..results import DENSE, RUN_INFO, SHAPE_COLUMNS, diverged_runs, hparam_columns

log = logging.getLogger(__name__)

RUN_META_COLUMNS = RUN_INFO[1:]
BASE_GROUP_COLUMNS = tuple(c for c in RUN_META_COLUMNS if c != "seed")
CI_SIZE = 0.95
FINAL_METRICS = ("actual_sparsity", "active_params", "dormant_frac")
"""Per-evaluation metrics whose last value per run is kept as ``final_<column>``."""

__all__ = [
    "expected_evals",
    "final_scores",
    "group_columns",
    "dense_reference",
    "normalize_scores",
    "iqm",
    "iqm_ci",
    "summarize",
    "summary_group_columns",
    "group_check",
]


# --------------------------------------------------------------------------- scores
def expected_evals(config: Mapping[str, Any]) -> int:
    """Evaluations of a complete run: ``total_steps // eval_every`` (at eval_every, 2*eval_every, ...)."""
    total, every = int(config["total_steps"]), int(config["eval_every"])
    if every <= 0:
        raise ValueError(f"eval_every must be positive, got {every}")
    return total // every


def _window(n: np.ndarray, frac: float) -> np.ndarray:
    # +1e-9 so that e.g. 0.29 * 100 = 28.999999999999996 still floors to 29.
    return np.maximum(1, np.floor(frac * n + 1e-9)).astype(int)


def final_scores(
    results: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    frac: float = 0.1,
    n_expected: int | None = None,
) -> pd.DataFrame:
    """One row per run with its final score (mean of the last ``max(1, floor(frac*n))`` evals).

    Columns: the run's metadata (from ``runs`` when given, else from ``results``), ``n_evals``
    (evaluations present), ``last_step``, ``k`` (evaluations averaged), ``final_score``, the
    last evaluation's ``actual_sparsity``/``active_params``/``dormant_frac`` (and per-network
    ``..._actor``, ``..._critic``) as ``final_*`` when present, ``diverged`` and,
    with ``n_expected``, ``complete`` (n_evals >= n_expected). Runs listed in ``runs`` without
    any evaluation get ``n_evals = 0`` and a NaN score.
    """
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    res = results.sort_values(["run", "step"], kind="stable")
    g = res.groupby("run", sort=True)
    n = g["step"].transform("size").to_numpy()
    from_end = g.cumcount(ascending=False).to_numpy()
    in_window = from_end < _window(n, frac)
    per_run = pd.DataFrame(
        {
            "n_evals": g.size(),
            "last_step": g["step"].max(),
            "final_score": res[in_window].groupby("run")["eval_return"].mean(),
        }
    )
    per_run["k"] = _window(per_run["n_evals"].to_numpy(), frac)
    last = g.tail(1).set_index("run")
    for col in last.columns:
        if col.startswith(FINAL_METRICS):  # also the per-network columns, e.g. dormant_frac_critic
            per_run[f"final_{col}"] = last[col]
    per_run = per_run.reset_index()

    meta_cols = [c for c in RUN_META_COLUMNS if c in res.columns]
    meta = g[meta_cols].first().reset_index()
    if runs is None:
        out = meta.merge(per_run, on="run", how="left")
    else:
        out = runs.merge(per_run, on="run", how="left")
        unknown = sorted(set(per_run["run"]) - set(runs["run"]))
        if unknown:
            log.warning("results.csv has runs not in runs.csv (%s); scored from results only", unknown[:10])
            extra = meta[meta["run"].isin(unknown)].merge(per_run, on="run", how="left")
            out = pd.concat([out, extra], ignore_index=True)
    out["n_evals"] = out["n_evals"].fillna(0).astype(int)
    out["k"] = out["k"].fillna(0).astype(int)
    out["diverged"] = out["run"].isin(diverged_runs(results)["run"])
    if n_expected is not None:
        out["complete"] = out["n_evals"] >= n_expected
    return out.sort_values("run", kind="stable").reset_index(drop=True)


def group_columns(runs: pd.DataFrame) -> list[str]:
    """Columns that define a group: env, agent, method, sparsity + every hyperparameter of
    runs.csv (:func:`purejaxsparse.results.hparam_columns`) that differs between the runs of
    one (env, agent, method, sparsity) cell. A per-method default (e.g. pruning's start) does
    not vary inside a cell and does not split groups; a swept value (``use_bias``, a learning
    rate, ``actor_sparsity``) does. Seeds are pooled.
    """
    cols = [c for c in BASE_GROUP_COLUMNS if c in runs.columns]
    hps = [c for c in hparam_columns(runs) if c not in cols]
    if not hps or runs.empty:
        return cols
    varied = runs.groupby(cols, dropna=False)[hps].nunique(dropna=False).max()
    return cols + [c for c in hps if varied[c] > 1]


def _scored(scores: pd.DataFrame) -> pd.Series:
    """Runs that count in aggregates: every run with a score (diverged and incomplete ones too)."""
    return scores["final_score"].notna()


def dense_reference(scores: pd.DataFrame) -> pd.Series:
    """Mean final score of full-dense runs per (env, agent, width): the normaliser, so that a
    wide sparse network is compared with the dense network of its own width (runs.csv's shape
    columns; a sweep of one width has one reference per env). Indexed by those keys."""
    keys = _reference_keys(scores)
    dense = scores[(scores["method"] == DENSE) & _scored(scores)]
    return dense.groupby(keys)["final_score"].mean().rename("dense_reference")


def _reference_keys(scores: pd.DataFrame) -> list[str]:
    return [c for c in ("env", "agent", *SHAPE_COLUMNS) if c in scores.columns]


def normalize_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Add ``dense_reference`` and ``normalized_score`` (= final_score / dense mean of its env and
    width).

    NaN where the env has no scored dense run or its dense mean is <= 0 (Acrobot, MountainCar: a
    ratio to a negative mean would flip the ranking), logged at info level since it is expected there.
    """
    keys = _reference_keys(scores)
    ref = dense_reference(scores)
    out = scores.drop(columns=["dense_reference", "normalized_score"], errors="ignore")
    out = out.merge(ref.reset_index(), on=keys, how="left")
    bad = ref[~(ref > 0)]
    if len(bad):
        log.info("dense mean <= 0 for %s (returns are costs there): no normalised scores", list(bad.index))
    missing = out.loc[out["dense_reference"].isna(), keys].drop_duplicates()
    if len(missing):
        log.info("no scored dense runs for %s: normalised scores left NaN there", missing.to_dict("records"))
    denom = out["dense_reference"].where(out["dense_reference"] > 0)
    out["normalized_score"] = out["final_score"] / denom
    return out


# ----------------------------------------------------------------------- bootstrap
def iqm(x: Any) -> float:
    """Interquartile mean of all values: the same 25% trimmed mean as rliable's ``aggregate_iqm``
    (``scipy.stats.trim_mean(x, 0.25, axis=None)``: drop ``int(0.25 n)`` values at each end),
    without scipy's per-call overhead, which dominated the bootstrap's run time.
    """
    a = np.sort(np.asarray(x, dtype=float), axis=None)
    cut = int(0.25 * a.size)
    return float(a[cut: a.size - cut].mean()) if a.size else math.nan


def _as_tasks(scores: Any) -> list[np.ndarray]:
    """Normalise input to a list of per-task 1-D score arrays (NaNs dropped)."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        tasks = [scores[:, j] for j in range(scores.shape[1])]
    elif isinstance(scores, (list, tuple)) and scores and np.ndim(scores[0]) >= 1:
        tasks = [np.asarray(t, dtype=float).ravel() for t in scores]
    else:
        tasks = [np.asarray(scores, dtype=float).ravel()]
    tasks = [t[~np.isnan(t)] for t in tasks]
    return [t for t in tasks if t.size]


def iqm_ci(scores: Any, reps: int = 2000, seed: int = 0, size: float = CI_SIZE) -> tuple[float, float, float]:
    """IQM and its stratified-bootstrap percentile CI: ``(point, low, high)``.

    ``scores``: 1-D (runs of one task), 2-D (runs x tasks) or a list of per-task arrays
    (tasks may have different run counts: each task is resampled within itself). NaNs are
    dropped. Bootstrap via ``rliable.library.get_interval_estimates``; rliable 1.2.0 draws
    its indices from numpy's *global* RNG (its ``random_state`` argument does not reach
    the draws), so the global RNG is seeded with ``seed`` for the call and restored after:
    the same inputs and seed give the same CI. With a single run, CI = the point estimate.
    """
    tasks = _as_tasks(scores)
    if not tasks:
        return (math.nan, math.nan, math.nan)
    point = iqm(np.concatenate(tasks))
    if sum(t.size for t in tasks) == len(tasks):  # one run per task: nothing to resample
        return (point, point, point)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        if len({t.size for t in tasks}) == 1:
            data: Any = np.stack(tasks, axis=1)
            func = lambda x: np.array([iqm(x)])  # noqa: E731
        else:
            data = [t[:, None] for t in tasks]
            func = lambda *xs: np.array([iqm(np.concatenate([x.ravel() for x in xs]))])  # noqa: E731
        _, ci = rly.get_interval_estimates({"g": data}, func, reps=reps, confidence_interval_size=size)
        lo, hi = float(ci["g"][0, 0]), float(ci["g"][1, 0])
    finally:
        np.random.set_state(state)
    return (point, lo, hi)


# ------------------------------------------------------------------------ summary
def group_check(n_diverged: int, n_incomplete: int, short: bool = False) -> str:
    """What a reader should know before trusting a group's numbers: "" or e.g. "1 diverged,
    2 incomplete" (short: "!"). Those runs count in the group's statistics as measured."""
    parts = [f"{int(n)} {word}" for n, word in ((n_diverged, "diverged"), (n_incomplete, "incomplete")) if n > 0]
    return ("!" if parts else "") if short else ", ".join(parts)


def summarize(
    results: pd.DataFrame,
    runs: pd.DataFrame,
    config: Mapping[str, Any],
    reps: int = 2000,
    seed: int = 0,
    frac: float = 0.1,
) -> pd.DataFrame:
    """One row per group (see :func:`group_columns`): counts, completeness and IQM with 95% CI.

    Columns: group columns, ``n_runs`` (runs planned in runs.csv), ``n_scored`` (with a score:
    the runs the statistics use, diverged and incomplete ones included), ``n_diverged``,
    ``n_incomplete``, ``n_complete`` (with all ``total_steps // eval_every`` evaluations),
    ``evals_done``/``evals_expected``/``completeness``, ``final_step_min``/``max`` (last
    evaluated step over the group's scored runs), ``mean``, ``std``, ``iqm``, ``ci_low``,
    ``ci_high``, ``ci_note`` ("single run: CI = point estimate" where it applies), ``check``
    (:func:`group_check`: "1 diverged, 2 incomplete", empty for a group without such runs),
    ``dense_reference`` and ``norm_mean``, ``norm_iqm``, ``norm_ci_low``, ``norm_ci_high``
    (divided by the dense mean of the env, NaN where not positive), plus the means of the
    ``final_*`` metrics of :func:`final_scores` (per network too; measured, so
    ``final_active_params`` is the parameter count the runs ended with) and of ``total_params``. Every group's
    bootstrap is seeded with ``seed``, so rows do not depend on which other groups exist.
    """
    n_exp = expected_evals(config)
    scores = normalize_scores(final_scores(results, runs, frac=frac, n_expected=n_exp))
    gcols = group_columns(runs)
    rows = []
    for key, grp in scores.groupby(gcols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(gcols, key))
        scored = grp[_scored(grp)]
        x = scored["final_score"].to_numpy(float)
        point, lo, hi = iqm_ci(x, reps=reps, seed=seed)
        row.update(
            n_runs=len(grp),
            n_scored=len(scored),
            n_diverged=int(grp["diverged"].sum()),
            n_incomplete=int((~grp["complete"]).sum()),
            n_complete=int(grp["complete"].sum()),
            evals_done=int(grp["n_evals"].sum()),
            evals_expected=int(len(grp) * n_exp),
            completeness=float(grp["n_evals"].clip(upper=n_exp).sum() / max(1, len(grp) * n_exp)),
            final_step_min=scored["last_step"].min() if len(scored) else np.nan,
            final_step_max=scored["last_step"].max() if len(scored) else np.nan,
            mean=float(x.mean()) if x.size else np.nan,
            std=float(x.std(ddof=1)) if x.size > 1 else np.nan,
            iqm=point,
            ci_low=lo,
            ci_high=hi,
            ci_note=(
                "no finite score" if x.size == 0 and grp["n_evals"].any()
                else "no evaluations yet" if x.size == 0
                else "single run: CI = point estimate" if x.size == 1
                else f"{int(CI_SIZE * 100)}% stratified bootstrap, {reps} reps"
            ),
        )
        row["check"] = group_check(row["n_diverged"], row["n_incomplete"])
        ref = grp["dense_reference"].iloc[0]
        ok = pd.notna(ref) and ref > 0
        row["dense_reference"] = ref
        for name in ("mean", "iqm", "ci_low", "ci_high"):
            row[f"norm_{name}"] = row[name] / ref if ok else np.nan
        finals = [c for c in grp.columns if c.startswith(tuple(f"final_{m}" for m in FINAL_METRICS))]
        for col in finals + ["total_params"]:
            if col in grp.columns:
                row[col] = pd.to_numeric(grp[col], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows)


def summary_group_columns(summary: pd.DataFrame) -> list[str]:
    """The group columns of a :func:`summarize` table: those before ``n_runs``."""
    cols = list(summary.columns)
    return cols[: cols.index("n_runs")] if "n_runs" in cols else [c for c in BASE_GROUP_COLUMNS if c in cols]
