"""How a global sparsity target is shared among layers: uniform, ER and ERK.

All functions take the global sparsity as a Python float or a traced scalar and give the same
float32 numbers either way (the Python path runs the same jnp code), so a sweep over
sparsities can be one vmapped program.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .hparams import ER, ERK, UNIFORM, distribution_id

Shape = Sequence[int]


def _raw_scores(shapes: Sequence[Shape], kernel_dims: bool) -> np.ndarray:
    """ER/ERK un-normalised density of each layer: sum(dims) / prod(dims).

    ERK uses every kernel dim (conv: kh + kw + n_in + n_out over their product); ER only the
    last two (n_in + n_out over n_in * n_out).
    """
    dims = [tuple(s) if kernel_dims else tuple(s[-2:]) for s in shapes]
    return np.array([sum(d) / math.prod(d) for d in dims], np.float64)


def _solve_scaled(sizes: np.ndarray, raw: np.ndarray, sparsity) -> jnp.ndarray:
    """Densities eps * raw_l whose active total is (1 - S) * N, layers over density 1 made dense.

    The re-solve runs a fixed L + 1 times (at least one layer turns dense per useful pass), so it
    traces with a traced sparsity.
    """
    sizes = jnp.asarray(sizes, jnp.float32)
    raw = jnp.asarray(raw, jnp.float32)
    target_active = (1.0 - sparsity) * jnp.sum(sizes)

    def solve(dense):
        free_mass = jnp.sum(jnp.where(dense, 0.0, raw * sizes))
        return (target_active - jnp.sum(jnp.where(dense, sizes, 0.0))) / jnp.maximum(free_mass, 1e-12)

    def resolve(_, dense):
        return dense | (solve(dense) * raw > 1.0)

    dense = jax.lax.fori_loop(0, len(sizes), resolve, jnp.zeros(sizes.shape, bool))
    eps = solve(dense)
    density = jnp.where(dense, 1.0, jnp.clip(eps * raw, 0.0, 1.0))
    return jnp.where(sparsity <= 0.0, 1.0, density)


def layer_sparsities(shapes: Sequence[Shape], sparsity, distribution="erk") -> jnp.ndarray:
    """Per-layer sparsity (fraction of zeros) for kernel `shapes` and a global target.

    shapes: kernel shapes in any fixed order; the last two dims are fan-in and fan-out (conv
    kernels have their spatial dims first). sparsity: global target in [0, 1), Python float or
    traced. distribution: 'uniform' | 'er' | 'erk', or its (possibly traced) id.
    Returns float32 [L]. ERK/ER: density_l = eps * raw_l, eps solved so the total active count is
    (1 - S) * N; a layer that would exceed density 1 is made dense and eps is solved again.
    """
    shapes = [tuple(int(d) for d in s) for s in shapes]
    for s in shapes:
        if len(s) < 2:
            raise ValueError(f"kernel shape {s} needs at least 2 dims (fan-in, fan-out)")
    sizes = np.array([math.prod(s) for s in shapes], np.float64)
    sparsity = jnp.asarray(sparsity, jnp.float32)
    uniform = jnp.full(len(shapes), 1.0, jnp.float32) - sparsity
    er = _solve_scaled(sizes, _raw_scores(shapes, kernel_dims=False), sparsity)
    erk = _solve_scaled(sizes, _raw_scores(shapes, kernel_dims=True), sparsity)
    which = jnp.asarray(distribution_id(distribution), jnp.int32)
    density = jnp.stack([uniform, er, erk])[which]
    return (1.0 - density).astype(jnp.float32)


def active_counts(shapes: Sequence[Shape], sparsities) -> jnp.ndarray:
    """Number of active weights per layer: k_l = round((1 - s_l) * n_l), int32 [L].

    Rounding rule: float32 product, rounded half to even (jnp.round), clipped to [0, n_l].
    Every mask this package builds has exactly k_l active entries in layer l.
    """
    sizes = jnp.asarray([math.prod(s) for s in shapes], jnp.float32)
    k = jnp.round((1.0 - jnp.asarray(sparsities, jnp.float32)) * sizes)
    return jnp.clip(k, 0, sizes).astype(jnp.int32)


assert (UNIFORM, ER, ERK) == (0, 1, 2)  # the stack order above relies on it
