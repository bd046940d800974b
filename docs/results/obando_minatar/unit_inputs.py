"""How many hidden units of each run have no active incoming or outgoing weight at the end?

A unit whose incoming weights are all masked computes relu(bias) whatever the input: it is cut
out of the network, and ReDo cannot revive it, since recycling keeps the mask. Reads each sweep's
final checkpoint (the masks of the MinAtar network: conv kernel, fc kernel, output kernel).
Usage (sweep directories, checkpoints kept):

    python unit_inputs.py runs/moc_x3 runs/moc_x3_rigl > unit_inputs.csv
"""
import sys
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pandas as pd


def unit_inputs(sweep_dir: Path) -> pd.DataFrame:
    runs = pd.read_csv(sweep_dir / "runs.csv")
    checkpoints = sweep_dir / "checkpoints"
    newest = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    leaves = ocp.PyTreeCheckpointer().restore(str(checkpoints / str(newest) / "default"))
    # the masks of the three kernels, in the params' order: [R,3,3,in,C], [R,flat,U], [R,U,A]
    masks = [np.asarray(leaves[k]) for k in sorted(leaves, key=int)
             if np.asarray(leaves[k]).dtype == bool and np.asarray(leaves[k]).ndim >= 3
             and np.asarray(leaves[k]).shape[0] == len(runs) and np.asarray(leaves[k]).ndim in (3, 5)]
    conv, fc, out = [m for m in masks if m.ndim == 5][:1] + [m for m in masks if m.ndim == 3][:2]
    channels, units = conv.shape[-1], fc.shape[-1]
    if fc.shape[1] % channels or out.shape[1] != units:
        raise SystemExit(f"{sweep_dir}: masks {[m.shape for m in (conv, fc, out)]} are not the MinAtar network's")
    rows = []
    for i, run in enumerate(runs.itertuples()):
        rows.append({"method": run.method, "sparsity": run.sparsity, "width": run.width,
                     "redo_every": run.redo_every, "seed": run.seed,
                     "conv_channels": channels,
                     "conv_no_input": int((conv[i].reshape(-1, channels).sum(0) == 0).sum()),
                     # NHWC flatten: fc row r reads channel r % channels
                     "conv_no_output": int((fc[i].reshape(-1, channels, units).sum((0, 2)) == 0).sum()),
                     "fc_units": units,
                     "fc_no_input": int((fc[i].sum(0) == 0).sum()),
                     "fc_no_output": int((out[i].sum(1) == 0).sum())})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    pd.concat([unit_inputs(Path(d)) for d in sys.argv[1:]]).to_csv(sys.stdout, index=False)
