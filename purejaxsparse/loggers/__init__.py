"""Live logging of every run of a sweep to TensorBoard and Weights & Biases (`--log`).

Why here and how: the scalars are results.csv's rows, which `sweep.run_sweep` hands to its
`on_chunk` callback on process 0 after each chunk is written and checkpointed. Logging therefore
happens on the host, between chunks, and never inside the compiled program: it cannot change
what a sweep computes (results.csv is the same with and without it), and it costs only the
time to write a few events per run and chunk.

- TensorBoard (tensorboardX, no TensorFlow): `DIR/tensorboard/<run name>/` per run, one event
  per evaluation holding results.csv's metric columns at step = env steps, and the run's
  runs.csv row in TensorBoard's hparams view; `DIR/tensorboard/sweep/` holds the sweep's env
  steps per second, one point per chunk.
- W&B (optional `wandb` package): one W&B run per sweep run, grouped by the sweep, with the
  runs.csv row as its config and the same scalars at the same steps; offline (files in
  `DIR/wandb/`, upload later with `wandb sync`) unless an API key is set or WANDB_MODE says.

Which loggers: `logging: {tensorboard: true, wandb: true}` in a config and `--log NAME` on
`run` add up; `run` records them in DIR/config.yaml, so `resume` goes on with them, and
`--log` on `resume` adds more. `--log none` turns all of them off (on `run`: for the sweep; on
`resume`: for that process).

Resume: a series goes on with no point twice and none missing. At its first write a logger
finds what it already holds per run (TensorBoard: it reads its own event files back; W&B: the
last step per run recorded in DIR/wandb/purejaxsparse-logged.json after each chunk), writes the
results.csv rows past that (the chunks a killed process left unlogged), and from then on skips
every step it holds (the chunks a resume computes again after an unreadable checkpoint).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from ..errors import shown
from ..fields import ConfigError, first_line
from .base import TENSORBOARD_DIR, import_tensorboardx, import_wandb, run_name
from .tensorboard import TensorBoardLogger
from .wandb import WandbLogger

__all__ = ["LOGGERS", "NONE", "config_loggers", "requested", "with_loggers", "sweep_logging", "SweepLogger",
           "run_name"]

LOGGERS = ("tensorboard", "wandb")
"""What `--log` and the config's `logging` mapping may name."""
NONE = "none"


# ------------------------------------------------------------------------------ which loggers
def config_loggers(config: dict) -> tuple[str, ...]:
    """The loggers a config's `logging` mapping turns on (validated: ConfigError in one line)."""
    value = config.get("logging")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"logging: got {shown(value)}; allowed: a mapping of {', '.join(LOGGERS)} to true or false")
    for name, on in value.items():
        if name not in LOGGERS:
            raise ConfigError(f"logging.{name}: unknown logger; allowed: {', '.join(LOGGERS)}")
        if not isinstance(on, bool):
            raise ConfigError(f"logging.{name}: got {shown(on)}; allowed: true or false")
    return tuple(name for name in LOGGERS if value.get(name))


def requested(flags: list[str] | None, config: dict) -> tuple[str, ...]:
    """The loggers of a run or resume: the config's plus `--log`'s (repeatable, comma-separated),
    or none with `--log none`. Checks that each can start (W&B: its package is installed), so a
    bad request is refused before anything is compiled or written."""
    names = [n.strip().lower() for flag in flags or [] for n in str(flag).split(",") if n.strip()]
    for name in names:
        if name not in LOGGERS + (NONE,):
            raise ConfigError(f"--log: got {shown(name)}; allowed: {', '.join(LOGGERS + (NONE,))}")
    if NONE in names:
        if len(set(names)) > 1:
            raise ConfigError(f"--log: got {','.join(names)}; allowed: {NONE} alone, or loggers")
        return ()
    chosen = set(config_loggers(config)) | set(names)
    loggers = tuple(name for name in LOGGERS if name in chosen)
    if "wandb" in loggers:
        import_wandb()
    if "tensorboard" in loggers:
        import_tensorboardx()
    return loggers


def with_loggers(config: dict, loggers: tuple[str, ...]) -> dict:
    """`config` whose `logging` mapping names exactly `loggers` (none: no `logging` key), so the
    sweep's config.yaml records them for `resume`."""
    out = {k: v for k, v in config.items() if k != "logging"}
    if loggers:
        out["logging"] = {name: True for name in loggers}
    return out


# ------------------------------------------------------------------------------ the callback
@contextlib.contextmanager
def sweep_logging(loggers, out_dir, plan, note=print):
    """Yields the `on_chunk` callback for run_sweep that feeds `loggers` (None without any).
    Call on process 0 only. On a normal exit, rows of results.csv the loggers do not hold yet are
    written (a sweep already complete never calls on_chunk); either way they are closed."""
    if not loggers:
        yield None
        return
    logger = SweepLogger(loggers, out_dir, plan, note)
    try:
        yield logger.on_chunk
        logger.catch_up()
    finally:
        logger.close()


class SweepLogger:
    """Feeds each chunk's rows to the chosen loggers; its first write catches up from results.csv
    (see the module docstring: what a resume logs)."""

    def __init__(self, loggers, out_dir, plan, note=print):
        self.out_dir = Path(out_dir)
        self.name = plan.config.get("name") or self.out_dir.name
        self.backends = []
        self.caught_up = False
        self.seconds = 0.0
        """Host time spent logging (what logging adds to the sweep's wall time)."""
        if "tensorboard" in loggers:
            self.backends.append(TensorBoardLogger(self.out_dir))
            note(f"tensorboard: every run is logged to {self.out_dir / TENSORBOARD_DIR}; view it with: "
                 f"tensorboard --logdir {self.out_dir / TENSORBOARD_DIR}")
        if "wandb" in loggers:
            self.backends.append(WandbLogger(self.out_dir, self.name, note))

    def on_chunk(self, rows, chunks_done, env_steps_per_second) -> None:
        """run_sweep's callback: log the chunk's rows (after catching up, the first time) and its
        env steps per second at its last evaluation step."""
        t0 = time.perf_counter()
        step = max(int(row["step"]) for row in rows) if rows else None
        self.catch_up(before=min(int(row["step"]) for row in rows) if rows else None)
        self._write(rows, step, env_steps_per_second)
        self.seconds += time.perf_counter() - t0

    def catch_up(self, before: int | None = None) -> None:
        """Once: write the rows of results.csv that a logger does not hold yet (only those before
        step `before`: the chunk being logged follows with its steps per second)."""
        if self.caught_up:
            return
        self.caught_up = True
        from ..results import read_results
        try:
            rows = read_results(self.out_dir).to_dict("records")
        except (FileNotFoundError, ValueError):  # no results.csv, or no complete row yet
            return
        self._write([row for row in rows if before is None or int(row["step"]) < before], None, None)

    def _write(self, rows, step, env_steps_per_second) -> None:
        """Each logger writes; one that fails (a full disk, a lost connection) says so in one line
        and stops, and the sweep goes on (a later `resume --log NAME` catches it up)."""
        for backend in list(self.backends):
            try:
                backend.write(rows, step, env_steps_per_second)
            except Exception as e:  # noqa: BLE001  (logging must never end a sweep)
                self.backends.remove(backend)
                print(f"{backend.name} logging stopped ({first_line(e)}); the sweep goes on; resume with "
                      f"--log {backend.name} to catch up", file=sys.stderr)
                with contextlib.suppress(Exception):
                    backend.close()

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
