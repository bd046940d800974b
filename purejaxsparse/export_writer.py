"""Export one run's trained policy from a sweep's checkpoint to a file that numpy alone can run.

`export_run(DIR, run, out)` (the CLI's `purejaxsparse export DIR --run N --out FILE.npz`) reads
the policy network of run N from the sweep's latest checkpoint (DQN: the Q-network; SAC and
PPO: the actor, with PPO's observation statistics when `normalize_obs` is on), masks its
kernels and biases, and writes each kernel as CSR when its density is at most
`csr_max_density` (else dense), with the biases, activations, the action head and metadata;
`purejaxsparse/export.py` (numpy and scipy.sparse, no JAX) loads and runs it.

Only the policy's leaves are read from the checkpoint (orbax partial restore by the flat leaf
index that store.py stores them under), so a sweep with large replay buffers exports
without loading them. Only a complete sweep exports (its final parameters); MLP policies only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import numpy as np

from .config import Plan
from .disk import check_file
from .fields import ConfigError
from .export import FORMAT, VERSION
from .policy_arrays import PolicyArrays
from .results import env_name
from .store import SweepDir, picked_by

CSR_MAX_DENSITY = 0.1
"""Default: a kernel is stored as CSR when at most this fraction of it is non-zero. Measured on
a 2-core AMD EPYC (benchmarks/export_latency.py, one observation): scipy's CSR mat-vec of a
512x512 or 256x256 kernel breaks even with numpy's dense one near 10% density."""

# -- reading a sweep ---------------------------------------------------------------------------

def restore_policy_inputs(sweep_dir, run: int, log=print) -> tuple[Plan, dict, int]:
    """(plan, run `run`'s `agent.policy_inputs` as numpy trees, env steps trained) from the
    newest readable checkpoint of a complete sweep; bad input raises ConfigError (one line)."""
    store = SweepDir(sweep_dir)
    plan = store.plan("export")
    if not 0 <= run < plan.num_runs:
        raise ConfigError(f"export: --run {run}: no such run; the sweep has {plan.num_runs} runs "
                          f"(0..{plan.num_runs - 1}, runs.csv)")
    shapes = jax.eval_shape(jax.vmap(plan.agent.init), plan.keys, plan.hparams)
    done, state = store.restore_run(shapes, picked_by(plan.agent.policy_inputs, shapes), run, log)
    if done is None:
        raise ConfigError(f"export: {store.path} has no checkpoint yet; run the sweep first")
    if done < plan.num_chunks:
        raise ConfigError(f"export: the sweep in {store.path} is incomplete ({done}/{plan.num_chunks} "
                          f"chunks); finish it first: purejaxsparse resume {store.path}")
    return plan, plan.agent.policy_inputs(state), done * plan.chunk_evals * plan.agent.eval_every


# -- writing -----------------------------------------------------------------------------------

def policy_file_arrays(policy: PolicyArrays, csr_max_density: float = CSR_MAX_DENSITY) -> tuple[dict, list]:
    """(npz arrays, per-layer metadata) in export.py's format."""
    arrays, layers = dict(policy.head_arrays), []
    for i, (kernel, bias, activation) in enumerate(policy.layers):
        nnz = int(np.count_nonzero(kernel))
        density = nnz / kernel.size
        info = {"in": kernel.shape[0], "out": kernel.shape[1], "activation": activation, "nnz": nnz,
                "density": round(density, 6), "format": "csr" if density <= csr_max_density else "dense"}
        if info["format"] == "csr":
            t = kernel.T  # rows: output units, so one row of CSR is one output's dot product
            rows, cols = np.nonzero(t)
            arrays[f"layer{i}_data"] = t[rows, cols].astype(np.float32)
            arrays[f"layer{i}_indices"] = cols.astype(np.uint16 if kernel.shape[0] <= 65535 else np.int32)
            arrays[f"layer{i}_indptr"] = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=t.shape[0]))]
                                                        ).astype(np.int32)
        else:
            arrays[f"layer{i}_kernel"] = np.ascontiguousarray(kernel, np.float32)
        arrays[f"layer{i}_bias"] = bias.astype(np.float32)
        layers.append(info)
    if policy.normalize is not None:
        arrays["obs_mean"] = np.asarray(policy.normalize["mean"], np.float32)
        arrays["obs_var"] = np.asarray(policy.normalize["var"], np.float32)
    return arrays, layers


def write_policy(path, policy: PolicyArrays, meta: dict, csr_max_density: float = CSR_MAX_DENSITY) -> dict:
    """Write `policy` with `meta` (JSON-able) to `path` (an npz, exactly that name); returns the
    full metadata stored. csr_max_density < 0 stores every kernel dense."""
    arrays, layers = policy_file_arrays(policy, csr_max_density)
    norm = None if policy.normalize is None else {k: float(policy.normalize[k]) for k in ("eps", "clip")}
    meta = {"format": FORMAT, "version": VERSION, **meta, "obs_shape": list(policy.obs_shape),
            "layers": layers, "head": policy.head, "normalize": norm,
            "active_params": sum(info["nnz"] for info in layers),
            "kernel_params": sum(info["in"] * info["out"] for info in layers)}
    meta["kernel_sparsity"] = round(1.0 - meta["active_params"] / meta["kernel_params"], 6)
    path = Path(path)
    check_file(path, "writing the policy to")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:  # written whole or not at all: a kill or a full disk leaves no half-written file
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to another name
            np.savez(f, meta=np.array(json.dumps(meta, default=_json_value)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return meta


def export_run(sweep_dir, run: int, out, csr_max_density: float = CSR_MAX_DENSITY) -> dict:
    """Export run `run` of the sweep in `sweep_dir` to `out`; returns the file's metadata."""
    plan, inputs, step = restore_policy_inputs(sweep_dir, run)
    hp = jax.tree.map(lambda x: x[run], plan.hparams)
    policy = plan.agent.policy_arrays(inputs, hp)
    info = plan.runs[run]
    meta = {"env": env_name(plan.config), "agent": plan.agent.name, "run": run, "method": info["method"],
            "sparsity": info.get("sparsity"), "seed": info.get("seed"), "step": step, "hparams": info,
            "config": plan.config, "sweep_dir": str(Path(sweep_dir).absolute())}
    return write_policy(out, policy, meta, csr_max_density)


def _json_value(v):
    """numpy scalars and other values json does not know, as plain values (else their text)."""
    return v.item() if isinstance(v, np.generic) else str(v)
