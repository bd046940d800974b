"""Measurements of a sparse network: active counts, actual sparsity, dormant neurons, gradient SNR."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from .hparams import SparseHParams
from .masks import is_width
from .spec import SparseSpec


def active_params(masks) -> jnp.ndarray:
    """Number of parameters that are switched on (kernels, biases and other leaves)."""
    return sum(jnp.sum(m, dtype=jnp.int32) for m in jax.tree.leaves(masks))


def dormant_units(activations: Sequence[jnp.ndarray], tau, unit_masks=None) -> list[jnp.ndarray]:
    """Per hidden layer, which units are tau-dormant (Sokar et al. 2023): the one definition,
    read by `dormant_fraction` and recycled by ReDo (sparse/redo.py).

    activations: post-activation outputs of the hidden layers, each [B, ..., units] (conv:
    spatial dims in the middle), output layer excluded. Score of unit i:
    s_i = E|h_i| / (mean_k E|h_k| + 1e-9), expectation over batch (and space); dormant if
    s_i <= tau. unit_masks (optional, per layer [units] bool) drops units that do not exist
    (param-matched dense) from the mean, and they are never dormant.
    """
    out = []
    for l, h in enumerate(activations):
        mean_abs = jnp.mean(jnp.abs(h).reshape(-1, h.shape[-1]), axis=0)
        alive = jnp.ones(h.shape[-1], bool) if unit_masks is None else unit_masks[l]
        n_alive = jnp.maximum(jnp.sum(alive), 1)
        layer_mean = jnp.sum(jnp.where(alive, mean_abs, 0.0)) / n_alive
        score = mean_abs / (layer_mean + 1e-9)
        out.append(alive & (score <= tau))
    return out


def dormant_fraction(activations: Sequence[jnp.ndarray], tau, unit_masks=None) -> jnp.ndarray:
    """Fraction of tau-dormant hidden units (`dormant_units`) among the units that exist."""
    dormant, total = jnp.float32(0.0), jnp.float32(0.0)
    for l, dead in enumerate(dormant_units(activations, tau, unit_masks)):
        alive = jnp.ones(dead.shape, bool) if unit_masks is None else unit_masks[l]
        dormant = dormant + jnp.sum(dead)
        total = total + jnp.sum(alive)
    return dormant / jnp.maximum(total, 1.0)


def existing_entries(spec: SparseSpec, hp: SparseHParams, masks):
    """Which params entries the original code's network has as variables: every kernel entry
    (its masks zero weights but the variable is dense), except the units param-matched dense
    removes (the original builds a narrower network); biases and other leaves as masked."""
    kernels = set(spec.kernels)
    leaves = spec.flatten(masks)
    narrow = is_width(hp)
    out = [jnp.where(narrow, m, jnp.ones_like(m)) if i in kernels else m
           for i, m in enumerate(leaves)]
    return spec.unflatten(out)


def gradient_snr(per_sample_grads, where, weights=None) -> jnp.ndarray:
    """Mean over the entries where `where` holds of |mean| / (std + 1e-10) of per-sample
    gradients (Graesser et al. 2022; rigl's `tf_sparse_utils.log_snr`, population std).

    per_sample_grads: a params-shaped tree with a leading batch axis [B, ...]; where: a
    params-shaped bool tree (`existing_entries` for the original's definition, the masks for
    active weights only); weights [B] (optional): sample weights, e.g. 0 for replay rows that
    are not transitions.
    """
    total, count = jnp.float32(0.0), jnp.float32(0.0)
    for g, m in zip(jax.tree.leaves(per_sample_grads), jax.tree.leaves(where)):
        g = g.astype(jnp.float32)
        if weights is None:
            mean, std = g.mean(0), g.std(0)
        else:
            w = weights.astype(jnp.float32).reshape((-1,) + (1,) * (g.ndim - 1))
            n = jnp.maximum(jnp.sum(w), 1e-12)
            mean = jnp.sum(w * g, 0) / n
            std = jnp.sqrt(jnp.sum(w * jnp.square(g - mean), 0) / n)
        snr = jnp.abs(mean) / (std + 1e-10)
        total = total + jnp.sum(jnp.where(m, snr, 0.0))
        count = count + jnp.sum(m)
    return total / jnp.maximum(count, 1.0)
