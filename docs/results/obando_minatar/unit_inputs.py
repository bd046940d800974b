"""How many hidden units of each run have no active incoming or outgoing weight at the end?

A unit whose incoming weights are all masked computes relu(bias) whatever the input: it is cut
out of the network, and ReDo cannot revive it, since recycling keeps the mask. Reads each run's
masks (MinAtar network: conv `layer_0`, fc `layer_1`, output `layer_2`) from its sweep's newest
readable checkpoint, with purejaxsparse's own checkpoint reader. Usage (sweep directories,
checkpoints kept):

    python unit_inputs.py runs/moc_x3 runs/moc_x3_rigl > unit_inputs.csv
"""
import sys

import jax
import pandas as pd

from purejaxsparse.results import read_runs
from purejaxsparse.store import SweepDir, picked_by


def unit_inputs(sweep_dir: str) -> pd.DataFrame:
    store = SweepDir(sweep_dir)
    plan = store.plan("unit_inputs")
    shapes = jax.eval_shape(jax.vmap(plan.agent.init), plan.keys, plan.hparams)
    rows = []
    for run in read_runs(sweep_dir).itertuples():
        _, state = store.restore_run(shapes, picked_by(lambda s: s.masks, shapes), run.run, log=lambda *_: None)
        masks = state.masks
        conv, fc, out = (masks["params"][f"layer_{i}"]["kernel"] for i in range(3))
        channels, units = conv.shape[-1], fc.shape[-1]
        rows.append({"method": run.method, "sparsity": run.sparsity, "width": run.width,
                     "redo_every": run.redo_every, "seed": run.seed,
                     "conv_channels": channels,
                     "conv_no_input": int((conv.reshape(-1, channels).sum(0) == 0).sum()),
                     # NHWC flatten: fc row r reads channel r % channels
                     "conv_no_output": int((fc.reshape(-1, channels, units).sum((0, 2)) == 0).sum()),
                     "fc_units": units,
                     "fc_no_input": int((fc.sum(0) == 0).sum()),
                     "fc_no_output": int((out.sum(1) == 0).sum())})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    pd.concat([unit_inputs(d) for d in sys.argv[1:]]).to_csv(sys.stdout, index=False)
