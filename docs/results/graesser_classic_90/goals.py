"""Did a MountainCar run ever reach the flag while training? Reads each sweep's final checkpoint.

MountainCar ends an episode early (`terminated`) only when the car reaches the flag; a time-out
at 200 steps truncates. With a replay as large as the run (100k), the final checkpoint's buffer
holds every training transition in order, so its `terminated` column says when, and how often,
each run reached the flag. Usage (one sweep directory per seed, checkpoints kept):

    python goals.py runs/mountaincar/seed0 runs/mountaincar/seed1 ... > goals.csv
"""
import sys
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pandas as pd
import yaml


def goals(sweep_dir: Path) -> pd.DataFrame:
    runs = pd.read_csv(sweep_dir / "runs.csv")
    steps = int(yaml.safe_load((sweep_dir / "config.yaml").read_text())["total_steps"])
    checkpoints = sweep_dir / "checkpoints"
    newest = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    # raw leaves, not purejaxsparse's store.SweepDir.restore_run: these checkpoints were written
    # at c7144af, before sweeps recorded their state layout, and today's DQN state orders its
    # leaves differently, so the store's index-based partial read would pick other leaves
    leaves = ocp.PyTreeCheckpointer().restore(str(checkpoints / str(newest) / "default"))
    # the replay's `terminated`: the one bool leaf of shape [runs, capacity, envs]
    terminated = [np.asarray(v) for v in leaves.values()
                  if np.asarray(v).dtype == bool and np.asarray(v).shape[:2] == (len(runs), steps)]
    if len(terminated) != 1:
        raise SystemExit(f"{sweep_dir}: expected one replay `terminated` leaf of {steps} steps, found {len(terminated)}")
    flags = terminated[0].reshape(len(runs), steps)
    rows = []
    for run, flag in zip(runs.itertuples(), flags):
        at = np.flatnonzero(flag)
        rows.append({"env": run.env, "seed": run.seed, "method": run.method, "goals": len(at),
                     "first_goal_step": int(at[0]) if len(at) else -1,
                     "goals_last_20k": int(flag[steps - 20_000:].sum())})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    pd.concat([goals(Path(d)) for d in sys.argv[1:]]).to_csv(sys.stdout, index=False)
