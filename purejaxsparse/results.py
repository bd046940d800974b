"""The sweep's tidy output files and their one schema: runs.csv, results.csv, config.yaml.

- runs.csv: one row per run: ``RUN_INFO``, every hyperparameter, ``SHAPE_COLUMNS``, then
  ``RUN_OUTPUTS``.
- results.csv: one row per (run, evaluation): ``RUN_INFO``, ``step``, the agent's metrics
  (``eval_return`` first). Optional per-evaluation columns ``finite`` (True while the run's
  parameters and loss were all finite up to this evaluation) and ``diverged_step`` (first
  training step where they were not, -1 while finite) flag diverged runs (:func:`diverged_runs`).

Writing: results.csv grows by whole lines after every chunk (flushed and fsynced). A crash can
leave a partial last line or rows of a chunk that was never checkpointed; `truncate_results`
cuts the file back to what the last checkpoint covers, so a resumed sweep ends with exactly the
rows of an uninterrupted one. Reading (:func:`load_sweep`) tolerates a sweep that is still
appending. Combining several sweeps' files: merge.py. numpy/pandas/yaml only: never imports jax.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .config_yaml import check_shape, read_yaml  # jax-free: YAML read within bounds
from .names import METHODS  # jax-free, shared with the sparse core

log = logging.getLogger(__name__)

DENSE = METHODS[0]

CONFIG_FILE, RUNS_FILE, RESULTS_FILE = "config.yaml", "runs.csv", "results.csv"
"""Their names in a sweep directory (store.py lists the directory's other files)."""
SWEEP_FILES = (CONFIG_FILE, RUNS_FILE, RESULTS_FILE)
"""The files that make a directory a sweep that `resume` can continue (a new sweep writes
them in this order, results.csv last, each atomically)."""
RUN_INFO = ("run", "env", "agent", "method", "sparsity", "seed")
"""First columns of runs.csv and results.csv."""
SHAPE_COLUMNS = ("width",)
"""runs.csv columns after the hyperparameters: static settings that shape a run's networks
(`agent_config.width`), so sweeps of several widths merge and are compared like swept values."""
RUN_OUTPUTS = ("total_params", "active_params")
"""Last columns of runs.csv: per-run outputs (final active count), not hyperparameters."""
TEXT_COLUMNS = ("env", "agent", "method")
"""results.csv columns that are text; every other one but ``finite`` is a number."""
FINITE, DIVERGED_STEP = "finite", "diverged_step"


def env_name(config: dict) -> str:
    """The env's name in a config: ``env: NAME`` or ``env: {name: NAME, ...}``."""
    env = config["env"]
    return env if isinstance(env, str) else env["name"]


# ------------------------------------------------------------------------------ writing
def format_value(v) -> str:
    """Shortest text that reads back to the same value (float32 metrics stay short)."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (np.floating, float)):
        return str(np.float32(v)) if isinstance(v, np.float32) else repr(float(v))
    return str(v)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a whole CSV atomically (temp file, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([[format_value(v) for v in row] for row in rows])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_rows(path: Path, rows: list[list]) -> None:
    """Append whole lines and make them durable before returning."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[format_value(v) for v in row] for row in rows])
    with open(path, "a", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def truncate_results(path: Path, max_step: int) -> int:
    """Keep the header and the complete rows with step <= max_step (a malformed one, as
    `read_results` skips it, is dropped too); returns rows kept."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.split("\n")
    if not lines or not lines[0]:
        raise FileNotFoundError(f"{path} has no header")
    header = next(csv.reader([lines[0]]))
    step_col, width = header.index("step"), len(header)
    complete = lines[1:-1] if not text.endswith("\n") else lines[1:]
    kept = []
    for line in complete:
        if not line:
            continue
        fields = next(csv.reader([line]))
        if len(fields) == width and _int_or_none(fields[step_col]) is not None and int(fields[step_col]) <= max_step:
            kept.append(fields)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(lines[0] + "\n")
        csv.writer(f, lineterminator="\n").writerows(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(kept)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def metric_columns(agent) -> tuple[str, ...]:
    """results.csv's metric columns: the agent's, then the engine's `diverged_step`."""
    return tuple(agent.metric_names) + (DIVERGED_STEP,)


def result_header(metric_names) -> list[str]:
    return list(RUN_INFO) + ["step"] + list(metric_names)


def result_rows(runs: list[dict], env_name: str, agent: str, metrics: dict, metric_names) -> list[list]:
    """Rows of one chunk: metrics are [R, n_evals] arrays (+ 'step')."""
    steps = np.asarray(metrics["step"])
    values = {m: np.asarray(metrics[m]) for m in metric_names}
    rows = []
    for r, run in enumerate(runs):
        info = [run["run"], env_name, agent, run["method"], run["sparsity"], run["seed"]]
        for e in range(steps.shape[1]):
            rows.append(info + [int(steps[r, e])] + [_metric(values[m][r, e]) for m in metric_names])
    return rows


def _metric(v):
    """A metric as written: bools as True/False, integers as integers, the rest as float32."""
    dtype = np.asarray(v).dtype
    if dtype == np.bool_:
        return bool(v)
    return int(v) if np.issubdtype(dtype, np.integer) else np.float32(v)


# ------------------------------------------------------------------------------ reading
def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (is this a sweep output directory?)")
    return path


def file_text(path: Path) -> str:
    """A table's text; one that is not UTF-8 (a binary file in its place) is a one-line ValueError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text table (byte {data[e.start]:#04x} at offset {e.start} is not "
                         f"UTF-8)") from None


def read_header(path: str | Path) -> list[str]:
    """The header row of a CSV file: its first line (at most 64 KiB), even while the rest is being
    written; [] when that line is no text (e.g. a binary file in its place)."""
    with open(path, "rb") as f:
        line = f.readline(1 << 16)
    try:
        return next(csv.reader([line.decode("utf-8").rstrip("\r\n")]), [])
    except (UnicodeDecodeError, csv.Error):
        return []


def read_config(out_dir: str | Path) -> dict:
    """``DIR/config.yaml`` as a dict; must have ``total_steps`` and ``eval_every``."""
    path = require_file(Path(out_dir) / CONFIG_FILE, CONFIG_FILE)
    cfg = read_yaml(path) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(cfg).__name__}")
    check_shape(cfg, str(path))
    missing = [k for k in ("total_steps", "eval_every") if k not in cfg]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    return cfg


def read_runs(out_dir: str | Path) -> pd.DataFrame:
    """``DIR/runs.csv``: one row per run; must have the ``RUN_INFO`` columns."""
    path = require_file(Path(out_dir) / RUNS_FILE, RUNS_FILE)
    try:
        runs = pd.read_csv(io.StringIO(file_text(path)))
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: not a table ({str(e).strip().splitlines()[0][:80]})") from None
    missing = [c for c in RUN_INFO if c not in runs.columns]
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
    checkpoint may append an evaluation again). ``finite`` is read as a boolean.
    """
    path = require_file(Path(out_dir) / RESULTS_FILE, RESULTS_FILE)
    text = file_text(path)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        raise ValueError(f"{path} has no rows")
    df = pd.read_csv(io.StringIO(text), on_bad_lines="skip")
    required = result_header(["eval_return"])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    for c in df.columns:
        if c == FINITE:
            df[c] = _as_bool(df[c])
        elif c not in TEXT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    n0 = len(df)
    df = df.dropna(subset=["run", "step", "method", "env"])
    df = df[df["eval_return"].notna() | _flagged(df)]  # a diverged run's NaN return is kept (and flagged)
    if len(df) < n0:
        log.warning("%s: skipped %d malformed row(s)", path, n0 - len(df))
    if df.empty:
        raise ValueError(f"{path} has no rows")
    df = df.astype({"run": int, "step": int})
    df = df.drop_duplicates(["run", "step"], keep="last").sort_values(["run", "step"], kind="stable")
    return df.reset_index(drop=True)


_BOOL_WORDS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}


def _as_bool(col: pd.Series) -> pd.Series:
    """True/False (also 1/0) as Python booleans; anything else None."""
    return col.map(lambda v: _BOOL_WORDS.get(str(v).strip().lower())).astype("object")


def load_sweep(out_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """``(config, runs, results)`` of a sweep output directory."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"sweep output directory not found: {out_dir}")
    return read_config(out_dir), read_runs(out_dir), read_results(out_dir)


# --------------------------------------------------------------------------- meaning
def hparam_columns(runs: pd.DataFrame) -> list[str]:
    """The hyperparameters a sweep varied: runs.csv columns that differ between runs, minus
    run, seed and the per-run outputs (``RUN_OUTPUTS``). In runs.csv's order."""
    skip = {"run", "seed", *RUN_OUTPUTS}
    return [c for c in runs.columns if c not in skip and runs[c].nunique(dropna=False) > 1]


def _flagged(results: pd.DataFrame) -> pd.Series:
    """Rows that say their run has diverged: ``finite`` False or ``diverged_step`` >= 0."""
    flag = pd.Series(False, index=results.index)
    if FINITE in results.columns:
        flag |= _as_bool(results[FINITE]).map(lambda v: v is False).astype(bool)
    if DIVERGED_STEP in results.columns:
        flag |= pd.to_numeric(results[DIVERGED_STEP], errors="coerce") >= 0
    return flag


def diverged_runs(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run whose parameters or loss became non-finite (any row with ``finite``
    False or ``diverged_step`` >= 0): its ``RUN_INFO`` columns, ``diverged_step`` (first
    training step that was not finite; -1 if unknown) and ``first_eval_step`` (first
    evaluation that flagged it). Empty for results without these columns (older sweeps)."""
    info = [c for c in RUN_INFO if c in results.columns]
    cols = info + [DIVERGED_STEP, "first_eval_step"]
    flagged = results[_flagged(results)]
    if flagged.empty:
        return pd.DataFrame(columns=cols)
    first = flagged.sort_values(["run", "step"], kind="stable").groupby("run", sort=True).head(1)
    out = first[info].copy()
    if DIVERGED_STEP in first.columns:
        steps = flagged[pd.to_numeric(flagged[DIVERGED_STEP], errors="coerce") >= 0]
        out[DIVERGED_STEP] = first["run"].map(steps.groupby("run")[DIVERGED_STEP].min()).fillna(-1).astype(int)
    else:
        out[DIVERGED_STEP] = -1
    out["first_eval_step"] = first["step"].astype(int).to_numpy()
    return out[cols].reset_index(drop=True)


def divergence_recorded(results: pd.DataFrame) -> bool:
    """Whether results.csv records divergence at all (sweeps before the columns did not)."""
    return FINITE in results.columns or DIVERGED_STEP in results.columns
