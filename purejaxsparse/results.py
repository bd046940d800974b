"""The sweep's tidy output files: runs.csv (one row per run) and results.csv (per evaluation).

results.csv grows by whole lines after every chunk (flushed and fsynced). A crash can leave a
partial last line or rows of a chunk that was never checkpointed; `truncate_results` cuts the
file back to what the last checkpoint covers, so a resumed sweep ends with exactly the rows of
an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

RUN_INFO = ("run", "env", "agent", "method", "sparsity", "seed")


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
    """Keep the header and the complete rows with step <= max_step; returns rows kept."""
    text = path.read_text() if path.exists() else ""
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
        if len(fields) == width and int(fields[step_col]) <= max_step:
            kept.append(fields)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(lines[0] + "\n")
        csv.writer(f, lineterminator="\n").writerows(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(kept)


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
    return int(v) if np.issubdtype(np.asarray(v).dtype, np.integer) else np.float32(v)
