"""PPO's initialisation as the original's (rigl's PPO networks on TF-Agents): the Keras
initialisers of actor and critic as `InitSpec`s for the sparse core, and exact orthogonal hidden
kernels wherever a run keeps the network's own init."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .. import sparse as sp
from ..sparse.masks import is_width, sparse_from_scratch
from ..sparse.spec import InitSpec
from .common import SparseNetwork

POLICY_INIT = InitSpec(0.1, "fan_in", "truncated_normal")
"""Logits / mean layer: tf.keras VarianceScaling(scale=0.1) (fan_in, truncated normal)."""


def value_out_init(fan_in: int) -> InitSpec:
    """Value output: U(-0.03, 0.03), i.e. uniform limit sqrt(3 * scale / fan_in) = 0.03."""
    return InitSpec(0.03 ** 2 * fan_in / 3.0, "fan_in", "uniform")


def orthogonal_variance(n_in: int, n_out: int) -> InitSpec:
    """Entry variance of an orthogonal (gain 1) kernel, 1 / max(n_in, n_out). A stand-in: the
    agent draws exact orthogonal kernels where the network keeps its own init."""
    return InitSpec(1.0, "fan_in" if n_in >= n_out else "fan_out", "normal")


def mlp_inits(in_dim: int, hidden, out_init: InitSpec) -> list[InitSpec]:
    fans = [in_dim, *hidden]
    return [orthogonal_variance(a, b) for a, b in zip(fans[:-1], fans[1:])] + [out_init]


def orthogonal_hidden(key, net: SparseNetwork, hp: sp.SparseHParams, params, masks, n_hidden: int):
    """Orthogonal hidden kernels (Keras Orthogonal(), gain 1) wherever the run keeps the network's
    own init (sp.init_kernels' dense case: neither sparsity-aware nor dense_width), masked."""
    own = ~(sparse_from_scratch(hp) & hp.sparse_init) & ~is_width(hp)
    kernels, kmasks = net.spec.kernel_leaves(params), net.spec.kernel_leaves(masks)
    for l in range(n_hidden):
        w = orthogonal_one_at_a_time(tuple(kernels[l].shape))(jax.random.fold_in(key, l))
        kernels[l] = jnp.where(own & kmasks[l], w, kernels[l])
    return net.spec.replace_kernels(params, kernels)


@functools.lru_cache(maxsize=None)
def orthogonal_one_at_a_time(shape: tuple[int, ...]):
    """key -> an orthogonal (gain 1) float32 kernel of `shape`; vmapped, one QR per key in turn.

    Batched, the QR is one LAPACK call that, on CPU with jaxlib 0.10, splits its batch onto
    XLA's intra-op thread pool and waits there: with every pool thread in such a QR, nothing
    runs the parts and the sweep's init hangs (seen with 2 cores and 4 runs of 2x64). Under
    vmap this maps over the keys instead (lax.map), which yields the same kernels."""
    @jax.custom_batching.custom_vmap
    def draw(key):
        return jax.nn.initializers.orthogonal()(key, shape, jnp.float32)

    @draw.def_vmap
    def draw_each(axis_size, in_batched, key):
        if not in_batched[0]:
            return draw(key), False
        return jax.lax.map(draw, key), True

    return draw
