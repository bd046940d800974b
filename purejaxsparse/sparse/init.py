"""Kernel initialisation that knows about masks.

Variance scaling with *masked* fans: each weight w_ij between input unit i and output unit j
uses fan_in_j = active weights into j and fan_out_i = active weights out of i (conv: summed
over the spatial dims), as in rigl's `unit_scaled_init`. With an all-ones mask this is the
ordinary initialiser; with a param-matched (unit) mask it is the narrower network's own init;
the sparsity-aware init (docs/reference.md) is U(+-sqrt(3 / max(1, fan_avg))) on masked fans.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .hparams import SparseHParams
from .masks import apply_masks, is_width, sparse_from_scratch
from .methods import jit_with_registry
from .spec import SPARSITY_AWARE, InitSpec, SparseSpec

_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def masked_fans(mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(fan_in per output unit [n_out], fan_out per input unit [n_in]) of a kernel mask."""
    n_in, n_out = mask.shape[-2:]
    per_pair = mask.reshape(-1, n_in, n_out).astype(jnp.float32).sum(0)
    return per_pair.sum(0), per_pair.sum(1)


def _fan(mask: jnp.ndarray, mode: str) -> jnp.ndarray:
    if mode == "none":
        return jnp.ones(mask.shape, jnp.float32)
    fan_in, fan_out = masked_fans(mask)
    if mode == "fan_in":
        fan = jnp.broadcast_to(fan_in[None, :], mask.shape[-2:])
    elif mode == "fan_out":
        fan = jnp.broadcast_to(fan_out[:, None], mask.shape[-2:])
    else:
        fan = 0.5 * (fan_in[None, :] + fan_out[:, None])
    return jnp.broadcast_to(jnp.maximum(fan, 1.0), mask.shape)


def variance_scaling(key: jax.Array, mask: jnp.ndarray, init: InitSpec) -> jnp.ndarray:
    """One kernel drawn from `init` with fans counted on `mask` (not multiplied by the mask)."""
    var = init.scale / _fan(mask, init.mode)
    shape = mask.shape
    if init.distribution == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) * jnp.sqrt(3.0 * var)
    if init.distribution == "normal":
        return jax.random.normal(key, shape) * jnp.sqrt(var)
    return jax.random.truncated_normal(key, -2.0, 2.0, shape) * jnp.sqrt(var) / _TRUNC_STD


def init_kernels(key: jax.Array, spec: SparseSpec, masks, hp: SparseHParams) -> list[jnp.ndarray]:
    """Fresh kernels (forward order, already masked) for one run.

    - width (dense_width): the layer's own InitSpec on masked fans (the narrower network's init).
    - sparse from scratch with hp.sparse_init: sparsity-aware U(+-sqrt(3/fan_avg)), masked fans.
    - otherwise: the layer's own InitSpec on full fans (the dense network's init).
    """
    kernels = []
    use_aware = sparse_from_scratch(hp) & hp.sparse_init
    narrow_init = is_width(hp)
    for l, mask in enumerate(spec.kernel_leaves(masks)):
        k_default, k_aware = jax.random.split(jax.random.fold_in(key, l))
        own = spec.inits[l]
        full = variance_scaling(k_default, jnp.ones(mask.shape, bool), own)
        narrow = variance_scaling(k_default, mask, own)
        aware = variance_scaling(k_aware, mask, SPARSITY_AWARE)
        w = jnp.where(narrow_init, narrow, jnp.where(use_aware, aware, full))
        kernels.append(jnp.where(mask, w, 0.0).astype(jnp.float32))
    return kernels


@jit_with_registry(static_argnames="spec")
def init_params(key: jax.Array, spec: SparseSpec, params, masks, hp: SparseHParams):
    """Params with every kernel re-drawn by `init_kernels`; biases/others kept, all masked."""
    params = spec.replace_kernels(params, init_kernels(key, spec, masks, hp))
    return apply_masks(params, masks)
