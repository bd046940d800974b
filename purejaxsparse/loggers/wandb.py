"""Weights & Biases logging of a sweep's runs (the package docstring says what is logged, when and why)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

from .base import SWEEP_SERIES, STEPS_PER_SECOND, WANDB_DIR, by_run, import_wandb, metric_values, run_name, run_rows

WANDB_RECORD = "purejaxsparse-logged.json"
"""DIR/wandb/WANDB_RECORD: the sweep's W&B id and the last step logged per run."""

class WandbLogger:
    """One W&B run per sweep run (id: the sweep's id and the run index, so a resume continues
    the same W&B runs), grouped by the sweep; config: the runs.csv row; history: the metric
    columns at step = env steps, and env steps per second at each chunk's last step.

    What each run holds is recorded after every chunk in DIR/wandb/purejaxsparse-logged.json
    (W&B's offline files are not read back); with it, the sweep's W&B id."""

    name = "wandb"

    def __init__(self, out_dir: Path, sweep_name: str, note=print):
        self.wandb = import_wandb()
        self.out_dir, self.sweep_name = out_dir, sweep_name
        self.mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_key() else "offline")
        self.runs: dict = {}
        self.record_path = out_dir / WANDB_DIR / WANDB_RECORD
        if self.mode == "offline":
            note(f"wandb: offline (no API key set): runs are written to {out_dir / WANDB_DIR}; "
                 f"upload them with: wandb sync {out_dir / WANDB_DIR}/offline-run-*")
        else:
            note(f"wandb: {self.mode}: project {os.environ.get('WANDB_PROJECT', 'purejaxsparse')}, "
                 f"group {self.group}")

    @property
    def group(self) -> str:
        name = self.out_dir.resolve().name
        return (name if self.sweep_name in name else f"{self.sweep_name}-{name}")[:128]

    def _open(self):
        if self.runs:
            return
        record = json.loads(self.record_path.read_text()) if self.record_path.is_file() else {}
        self.sweep_id = record.get("sweep_id") or uuid.uuid4().hex[:12]
        self.logged = {int(k): v for k, v in record.get("logged", {}).items()}
        rows = run_rows(self.out_dir)
        settings = self.wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True,
                                       save_code=False, disable_job_creation=True)
        (self.out_dir / WANDB_DIR).mkdir(parents=True, exist_ok=True)
        for run in rows:
            r = int(run["run"])
            self.runs[r] = self.wandb.init(
                project=os.environ.get("WANDB_PROJECT", "purejaxsparse"), group=self.group,
                name=run_name(run, len(rows)), id=f"{self.sweep_id}-run{r}", resume="allow",
                config={**run, "sweep": self.sweep_name, "sweep_dir": str(self.out_dir.resolve())},
                dir=str(self.out_dir), mode=self.mode, reinit="create_new", settings=settings)
            self.logged.setdefault(r, -1)
        self._save_record()

    def write(self, rows, step, env_steps_per_second) -> None:
        self._open()
        for r, run_rows_ in by_run(rows).items():
            for row in run_rows_:
                s = int(row["step"])
                if s <= self.logged[r]:
                    continue
                values = metric_values(row)
                if s == step and env_steps_per_second is not None:
                    values[f"{SWEEP_SERIES}/{STEPS_PER_SECOND}"] = float(env_steps_per_second)
                self.runs[r].log(values, step=s)
                self.logged[r] = s
        self._save_record()

    def _save_record(self) -> None:
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sweep_id": self.sweep_id, "logged": self.logged}))
        os.replace(tmp, self.record_path)

    def close(self) -> None:
        for run in self.runs.values():
            with contextlib.suppress(Exception):
                run.finish()
        self.runs = {}


def _wandb_key() -> bool:
    """Whether an API key is set (WANDB_API_KEY, or `wandb login`'s entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    try:
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
