"""What the live loggers share: their directories and series names, a run's name, runs.csv's
rows and a results.csv row's metric values as they log them, and the import of each logger's
package (one line that says how to install it when it is missing)."""

from __future__ import annotations

import math
from pathlib import Path

from ..fields import ConfigError

TENSORBOARD_DIR, WANDB_DIR = "tensorboard", "wandb"
SWEEP_SERIES = "sweep"
"""DIR/tensorboard/sweep/: the sweep's own series (env steps per second, per chunk)."""
STEPS_PER_SECOND = "env_steps_per_second"
WANDB_INSTALL = 'pip install -e ".[wandb]"'


def import_wandb():
    """The wandb package (an optional dependency), or a one-line ConfigError saying how to install it."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(f"--log wandb: the wandb package is not installed; install it with: {WANDB_INSTALL} "
                          f"(or leave W&B out: --log none)") from None
    return wandb


def import_tensorboardx():
    """The tensorboardX package, or a one-line ConfigError saying how to install it."""
    try:
        import tensorboardX
    except ImportError:
        raise ConfigError("--log tensorboard: the tensorboardX package is not installed; "
                          "install it with: pip install -e .") from None
    return tensorboardX


def run_rows(out_dir: Path) -> list[dict]:
    """runs.csv's rows as plain Python values (empty cells left out): each run's hyperparameters
    for TensorBoard's hparams view and W&B's config."""
    from ..results import read_runs
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for row in read_runs(out_dir).to_dict("records")]


def run_name(run: dict, num_runs: int) -> str:
    """A run's name in TensorBoard's run list and W&B, e.g. run007-rigl-s0.9-seed2."""
    width = max(3, len(str(num_runs - 1)))
    return f"run{int(run['run']):0{width}d}-{run['method']}-s{float(run['sparsity']):g}-seed{run['seed']}"


def metric_values(row: dict) -> dict[str, float]:
    """A results.csv row's metric columns (all after `step`) as floats, finite as 1/0: the same
    whether the row came from on_chunk or from results.read_results."""
    keys = list(row)
    return {key: float(row[key]) for key in keys[keys.index("step") + 1:]}


def by_run(rows) -> dict[int, list[dict]]:
    """Rows grouped by their run index, in order."""
    out: dict[int, list[dict]] = {}
    for row in rows:
        out.setdefault(int(row["run"]), []).append(row)
    return out
