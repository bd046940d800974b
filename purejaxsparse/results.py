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
appending. numpy/pandas/yaml only: never imports jax.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config_yaml import check_shape, read_yaml  # jax-free: YAML read within bounds
from .names import METHODS  # jax-free, shared with the sparse core

log = logging.getLogger(__name__)

DENSE = METHODS[0]

CONFIG_FILE, RUNS_FILE, RESULTS_FILE = "config.yaml", "runs.csv", "results.csv"
"""Their names in a sweep directory (store.py lists the directory's other files)."""
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
def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (is this a sweep output directory?)")
    return path


def _text(path: Path) -> str:
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
    path = _require(Path(out_dir) / CONFIG_FILE, CONFIG_FILE)
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
    path = _require(Path(out_dir) / RUNS_FILE, RUNS_FILE)
    try:
        runs = pd.read_csv(io.StringIO(_text(path)))
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
    path = _require(Path(out_dir) / RESULTS_FILE, RESULTS_FILE)
    text = _text(path)
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


# ------------------------------------------------------------------------------ merging
MERGE_FREE_KEYS = ("name", "env", "sweep", "logging", "checkpoint_every", "merged_from", "filled")
"""Config keys that may differ between the sweeps that `merge_sweeps` combines (the sweep grid
is compared through the runs themselves: no run may appear twice; live logging changes no
result; a merged directory may be merged again)."""

FILLED_SECTIONS = ("hparams", "agent_config")
"""Config sections whose settings a sweep written before a setting existed lacks (`merge_sweeps`'
`defaults`)."""


def _fill_settings(configs: list[dict], tables: list, defaults: dict) -> list[list[str]]:
    """Complete, in place, the configs and runs tables of sweeps written before some setting
    existed: a setting that another source has and this one lacks (a runs.csv column, a key of
    `FILLED_SECTIONS`) takes its default from `defaults`, the value every setting has before it
    can be changed. Returns the filled names per source; a missing name without a default stays
    missing (and the merge refuses it)."""
    header = max((runs[0] for runs, _ in tables), key=len)
    filled = []
    for i, (cfg, ((cols, rows), results)) in enumerate(zip(configs, tables)):
        names = [c for c in header if c not in cols and c in defaults]
        for section in FILLED_SECTIONS:
            wanted = {k for other in configs for k in (other.get(section) or {})}
            lacks = sorted(k for k in wanted - set(cfg.get(section) or {}) if k in defaults)
            if lacks:
                cfg[section] = {**(cfg.get(section) or {}), **{k: defaults[k] for k in lacks}}
                names += [k for k in lacks if k not in names]
        if any(c not in cols for c in header) and set(header) <= set(cols) | set(defaults):
            where = {c: j for j, c in enumerate(cols)}
            rows = [[row[where[c]] if c in where else str(defaults[c]) for c in header] for row in rows]
            tables[i] = ((list(header), rows), results)
        filled.append(sorted(names))
    return filled


def _merge_compared(config: dict) -> dict:
    """What must agree between merged sweeps: the config but ``MERGE_FREE_KEYS`` and the
    network shape (``SHAPE_COLUMNS``, a runs.csv column that tells the runs apart)."""
    out = {k: v for k, v in config.items() if k not in MERGE_FREE_KEYS}
    if "agent_config" in out:
        out["agent_config"] = {k: v for k, v in out["agent_config"].items() if k not in SHAPE_COLUMNS}
    return out


def merge_sweeps(out_dir: str | Path, sources: list[str | Path], defaults: dict | None = None) -> dict:
    """Combine the output files of several sweeps of one study (e.g. one directory per seed or
    per env) into ``out_dir``: runs.csv and results.csv with runs renumbered in source order
    (every other value copied as written), and config.yaml with ``env`` (a list when the envs
    differ), ``sweep.seed`` the union of seeds and ``merged_from``. `report` reads the result
    like a sweep; it has no checkpoints, so it cannot be resumed, exported or noise-tested.

    Refused with ValueError (one line) when a source is not a sweep directory, the configs differ
    in anything but ``MERGE_FREE_KEYS`` and the network width (a list in the merged config when
    it differs), their files have different columns, or a run (same env,
    seed and hyperparameters) appears in two sources. Returns the merged config.

    defaults: setting name -> default value (the agent's hyperparameters and static settings).
    With it, a sweep written by an earlier version, before some setting existed, merges with
    newer ones: its runs take that setting's default, and the merged config lists them under
    ``filled`` per source (e.g. ``skip_gradient``, added with False, the earlier behaviour).
    """
    out_dir, sources = Path(out_dir), [Path(s) for s in sources]
    if len(sources) < 2:
        raise ValueError("merge: give at least two sweep directories")
    if any(out_dir.resolve() == s.resolve() for s in sources):
        raise ValueError(f"merge: the output directory {out_dir} is one of the sources")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"merge: {out_dir} is not empty")
    configs = [read_config(s) for s in sources]
    tables = [(_csv_text(s / RUNS_FILE, RUNS_FILE), _csv_text(s / RESULTS_FILE, RESULTS_FILE)) for s in sources]
    filled = _fill_settings(configs, tables, defaults or {})
    base = _merge_compared(configs[0])
    for s, cfg, (runs, results) in zip(sources[1:], configs[1:], tables[1:]):
        other = _merge_compared(cfg)
        differs = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
        if differs:
            raise ValueError(f"merge: {s} differs from {sources[0]} in {differs[0]!r}; only "
                             f"{', '.join(MERGE_FREE_KEYS)} may differ")
        for name, (header, _), (first, _) in ((RUNS_FILE, runs, tables[0][0]), (RESULTS_FILE, results, tables[0][1])):
            if header != first:
                raise ValueError(f"merge: {s}/{name} has other columns than {sources[0]}/{name}")
    runs_header, results_header = tables[0][0][0], tables[0][1][0]
    settings = [i for i, c in enumerate(runs_header) if c not in ("run",) + RUN_OUTPUTS]
    col = {c: runs_header.index(c) for c in RUN_INFO}
    run_rows, result_rows, seen = [], [], {}
    for s, ((_, runs), (_, results)) in zip(sources, tables):
        renumber = {}
        for row in runs:
            key = tuple(row[i] for i in settings)
            if key in seen:
                raise ValueError(f"merge: run {row[0]} of {s} (env {row[col['env']]}, method "
                                 f"{row[col['method']]}, seed {row[col['seed']]}) is also in {seen[key]}")
            seen[key] = s
            renumber[row[0]] = str(len(run_rows))
            run_rows.append([renumber[row[0]]] + row[1:])
        result_rows += [[renumber[row[0]]] + row[1:] for row in results if row[0] in renumber]
    envs = list(dict.fromkeys(env for cfg in configs for env in _env_list(cfg)))
    merged = dict(configs[0])
    merged["env"] = configs[0]["env"] if len(envs) == 1 else envs
    seeds = sorted({int(row[col["seed"]]) for row in run_rows})
    merged["sweep"] = {**(merged.get("sweep") or {}), "seed": seeds}
    shapes = {c: list(dict.fromkeys((cfg.get("agent_config") or {}).get(c, 1) for cfg in configs)) for c in SHAPE_COLUMNS}
    if any(len(v) > 1 for v in shapes.values()):
        merged["agent_config"] = {**(merged.get("agent_config") or {}),
                                  **{c: v if len(v) > 1 else v[0] for c, v in shapes.items()}}
    merged["merged_from"] = [str(s) for s in sources]
    merged.pop("filled", None)
    if any(filled):
        merged["filled"] = {str(s): names for s, names in zip(sources, filled) if names}
    merged.pop("logging", None)  # a merged directory is read, never logged
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(merged, sort_keys=False))
    write_csv(out_dir / RUNS_FILE, runs_header, run_rows)
    write_csv(out_dir / RESULTS_FILE, results_header, result_rows)
    return merged


def _env_list(config: dict) -> list[str]:
    env = config["env"]
    return [env_name({"env": e}) for e in env] if isinstance(env, list) else [env_name(config)]


def _csv_text(path: Path, what: str) -> tuple[list[str], list[list[str]]]:
    """(header, complete rows) of a CSV file as text, so a copy keeps every value as written;
    a partial last line (a write in progress) is left out. The first column must be ``run``."""
    text = _text(_require(path, what))
    lines = text.split("\n")
    complete = lines[1:] if text.endswith("\n") else lines[1:-1]
    header = next(csv.reader([lines[0]]), [])
    if not header or header[0] != "run":
        raise ValueError(f"{path}: expected a header starting with 'run'")
    return header, [r for r in csv.reader([line for line in complete if line]) if len(r) == len(header)]
