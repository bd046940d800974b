"""Run an exported purejaxsparse policy with numpy (and scipy.sparse, if installed) only: no JAX.

    from purejaxsparse.export import load_policy
    act = load_policy("policy.npz")
    action = act(obs)            # one observation -> int (discrete) or float32 [A]
    actions = act(batch_of_obs)  # [B, *obs_shape] -> int64 [B] or float32 [B, A]

This file depends on nothing else in purejaxsparse (copy it into any project). `purejaxsparse
export DIR --run N --out FILE.npz` (purejaxsparse/export_writer.py, the JAX side) writes the
file: an uncompressed npz whose `meta` entry is JSON (env, agent, method, sparsity, step,
config, layers, head) and whose arrays are, per layer i, either `layer{i}_kernel` [in, out]
(dense) or the CSR of the kernel's transpose (`layer{i}_data`, `_indices`, `_indptr`; rows are
output units), then `layer{i}_bias`; optionally `obs_mean`/`obs_var` (observation
normalisation: clip((x - mean) / sqrt(var + eps), +-clip)) and `head_center`/`head_half`.
The head turns the last layer's outputs into the action: `argmax`, `squash` (center + half *
tanh of the first `outputs` values: SAC's tanh(mean) in the action box, PPO's squashed mean) or
`identity` (the first `outputs` values).

Speed: one observation runs each CSR layer through scipy's compiled CSR mat-vec
(`scipy.sparse._sparsetools.csr_matvec`, checked against the public `csr_matrix @ x` when the
file loads and replaced by it if the two disagree or the private function is missing); batches
use `csr_matrix @ X`. Without scipy, CSR layers are expanded to dense numpy arrays.
"""

from __future__ import annotations

import json

import numpy as np

try:
    import scipy.sparse as _sparse
except ImportError:  # numpy only: CSR layers become dense
    _sparse = None
try:  # scipy's compiled CSR mat-vec (private: checked against the public product before use)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:
    _csr_matvec = None

FORMAT = "purejaxsparse-policy"
VERSION = 1
_ZERO = np.float32(0.0)
_ACTIVATIONS = {"relu": lambda x: np.maximum(x, _ZERO, out=x), "tanh": lambda x: np.tanh(x, out=x),
                None: lambda x: x}


def _csr_layer(matrix, bias):
    """(one, many): bias + matrix @ x for one vector x, and for the rows of X [B, in]. One vector
    goes through scipy's compiled kernel when it agrees with the public product on a test
    vector, else through the public product."""
    n_out, n_in = matrix.shape
    public = lambda x: matrix @ x + bias  # noqa: E731
    many = lambda x: (matrix @ x.T).T + bias  # noqa: E731
    try:
        csr_matvec, indptr, indices, data = _csr_matvec, matrix.indptr, matrix.indices, matrix.data

        def fast(x):
            y = bias.copy()
            csr_matvec(n_out, n_in, indptr, indices, data, x, y)  # accumulates: y += A x
            return y

        probe = np.linspace(-1.0, 1.0, n_in, dtype=np.float32)
        if np.allclose(fast(probe), public(probe), rtol=1e-5, atol=1e-5):
            return fast, many
    except Exception:  # noqa: BLE001 - a private scipy function: any failure means "use the public one"
        pass
    return public, many


def _dense_layer(kernel, bias):
    """(one, many) of a dense kernel [in, out]: one vector as (out, in) @ x, which numpy runs
    with less overhead than x @ kernel for narrow layers."""
    transposed = np.ascontiguousarray(kernel.T)

    def one(x):
        y = transposed.dot(x)
        y += bias
        return y

    return one, lambda x: x @ kernel + bias


class Policy:
    """`policy(obs)` -> action; `policy.outputs(obs)` -> the network's raw outputs [B, out]."""

    def __init__(self, arrays: dict, meta: dict):
        self.meta = meta
        self.obs_shape = tuple(meta["obs_shape"])
        norm = meta.get("normalize")
        self._norm = None if norm is None else (
            arrays["obs_mean"].reshape(-1),
            np.sqrt(arrays["obs_var"].reshape(-1) + np.float32(norm["eps"])), np.float32(norm["clip"]))
        self._layers = []  # (one: x [in] -> [out], many: X [B, in] -> [B, out], activation)
        for i, layer in enumerate(meta["layers"]):
            bias = arrays[f"layer{i}_bias"]
            if layer["format"] == "csr":
                csr = (arrays[f"layer{i}_data"], arrays[f"layer{i}_indices"].astype(np.int32),
                       arrays[f"layer{i}_indptr"].astype(np.int32))
                shape = (layer["out"], layer["in"])
                if _sparse is not None:
                    fns = _csr_layer(_sparse.csr_matrix(csr, shape=shape), bias)
                else:
                    fns = _dense_layer(np.ascontiguousarray(_csr_to_dense(*csr, shape).T), bias)
            else:
                fns = _dense_layer(arrays[f"layer{i}_kernel"], bias)
            self._layers.append((*fns, _ACTIVATIONS[layer["activation"]]))
        self._head = meta["head"]
        self._center, self._half = arrays.get("head_center"), arrays.get("head_half")

    def outputs(self, obs) -> np.ndarray:
        """The last layer's outputs [B, out] (Q-values, logits, or the mean/std units)."""
        x, single = self._flat(obs)
        out = self._run(x, single)
        return out[None] if single else out

    def __call__(self, obs):
        x, single = self._flat(obs)
        out = self._run(x, single)
        kind = self._head["kind"]
        if kind == "argmax":
            return int(out.argmax()) if single else out.argmax(axis=-1)
        out = out[..., :self._head["outputs"]]
        if kind == "squash":  # center + half * tanh(out), in place on a fresh array
            out = np.tanh(out)
            out *= self._half
            out += self._center
        return out

    def _flat(self, obs):
        """(float32 observations, flattened: [in] for one observation, [B, in] for a batch; single?)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.shape == self.obs_shape:
            return np.ascontiguousarray(x.reshape(-1)), True
        if x.shape[1:] == self.obs_shape:
            return x.reshape(len(x), -1), False
        raise ValueError(f"observation shape {x.shape}: expected {self.obs_shape} or (B, *{self.obs_shape})")

    def _run(self, x, single: bool):
        if self._norm is not None:
            mean, std, clip = self._norm
            x = np.clip((x - mean) / std, -clip, clip)
        for one, many, activation in self._layers:
            x = activation(one(x) if single else many(x))
        return x


def _csr_to_dense(data, indices, indptr, shape):
    dense = np.zeros(shape, np.float32)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    dense[rows, indices] = data
    return dense


def load_policy(path) -> Policy:
    """The policy in an exported file (`purejaxsparse export`): call it on observations."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} file of version {VERSION}")
    return Policy(arrays, meta)
