"""A trained policy as plain numpy arrays: what an agent hands to export (`Agent.policy_arrays`)
and `export_writer` writes in the format `export.py` loads. numpy only."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class PolicyArrays:
    """A policy as plain arrays: layers (kernel [in, out], bias [out], activation or None),
    the head (export.py's kinds) and the observation normalisation, all float32."""

    obs_shape: tuple[int, ...]
    layers: list[tuple[np.ndarray, np.ndarray, str | None]]
    head: dict
    head_arrays: dict = dataclasses.field(default_factory=dict)
    normalize: dict | None = None          # {"mean", "var", "eps", "clip"}


def mlp_layers(params: dict, masks: dict, activation: str) -> list:
    """(masked kernel, masked bias, activation) of an MLP's layer_0..layer_L (nets/mlp.py); the
    last layer is linear."""
    n = len([k for k in params if k.startswith("layer_")])
    out = []
    for i in range(n):
        p, m = params[f"layer_{i}"], masks[f"layer_{i}"]
        kernel = np.where(m["kernel"], p["kernel"], 0.0).astype(np.float32)
        bias = np.where(m["bias"], p["bias"], 0.0).astype(np.float32)
        out.append((kernel, bias, activation if i < n - 1 else None))
    return out
