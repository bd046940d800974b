"""Glue shared by the agents: a network with its sparse spec, the replay schedule, losses, metrics."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .. import sparse as sp
from ..nets.width import MAX_UNITS


@dataclasses.dataclass(frozen=True)
class OffPolicySchedule:
    """Replay size and update schedule of an off-policy agent (DQN, SAC) stepping E envs.

    capacity: replay rows (E transitions each) for `buffer_size` transitions; the first update
    comes at the iteration whose env steps reach `learning_starts` (warm-up), then one round of
    updates every `train_every` iterations.
    """

    capacity: int
    first_train_iter: int
    train_every: int = 1

    @classmethod
    def of(cls, buffer_size: int, learning_starts: int, num_envs: int, train_every: int = 1):
        return cls(max(1, buffer_size // num_envs), max(0, -(-learning_starts // num_envs) - 1), train_every)

    def due(self, t):
        """(whether iteration t updates, rounds of updates done before it); t unbatched."""
        since = t - self.first_train_iter
        return (since >= 0) & (since % self.train_every == 0), since // self.train_every

    def rounds(self, iterations: int) -> int:
        """Rounds of updates in a run of `iterations` iterations (due at first_train_iter,
        first_train_iter + train_every, ... up to iteration `iterations` - 1)."""
        return max(0, (iterations - 1 - self.first_train_iter) // self.train_every + 1)

    def rows_written(self, t):
        """Replay rows holding data after t iterations (the ring's fill level)."""
        return jnp.minimum(t, self.capacity)


@dataclasses.dataclass(frozen=True)
class SparseNetwork:
    """A flax module, the shape of its input, and the SparseSpec of its params (all static)."""

    module: nn.Module
    input_shape: tuple[int, ...]
    input_dtype: Any
    spec: sp.SparseSpec

    @classmethod
    def build(cls, module: nn.Module, input_shape, input_dtype=jnp.float32, inits=None):
        """Spec from the module's param shapes (no params are materialised)."""
        x = jax.ShapeDtypeStruct((1, *input_shape), input_dtype)
        shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
        spec = sp.SparseSpec.from_params(shapes, inits)
        if spec.num_params > MAX_UNITS:
            raise ValueError(f"a network of {spec.num_params:,} parameters (agent_config.width, hidden); allowed: at "
                             f"most {MAX_UNITS:,} per network (the program counts weights in int32)")
        return cls(module, tuple(input_shape), np.dtype(input_dtype), spec)

    def init(self, key: jax.Array, hp: sp.SparseHParams):
        """(params, masks) of one run: module init, then masks and mask-aware kernels."""
        k_module, k_sparse = jax.random.split(key)
        params = self.module.init(k_module, jnp.zeros((1, *self.input_shape), self.input_dtype))
        return sp.init_sparse(k_sparse, self.spec, params, hp)

    def apply(self, params, x):
        return self.module.apply(params, x)

    def activations(self, params, x):
        """Hidden post-activations (for dormant neurons)."""
        return self.module.apply(params, x, return_activations=True)[1]


def l2_penalty(spec: sp.SparseSpec, params, weight_decay, output_layer: bool = True):
    """Keras-style L2 on kernels only: weight_decay * sum(w^2) (biases are not decayed).

    output_layer=False leaves the last kernel out (TF-Agents' classic-control Q-network has no
    regularizer on its output layer).
    """
    kernels = spec.kernel_leaves(params)
    kernels = kernels if output_layer else kernels[:-1]
    return weight_decay * sum(jnp.sum(jnp.square(k)) for k in kernels)


SNR_METRICS = ("grad_snr", "grad_snr_active")
"""Gradient SNR columns (agent_config.grad_snr): over every entry the original's network has,
and over active entries only (sparse.gradient_snr)."""


def network_metrics(members: Sequence[tuple], tau) -> dict:
    """actual_sparsity, active_params and dormant_frac of one network or several together.

    members: (net, params, masks, sparse_hp, states) per network. Sparsity over all their
    kernels, active count summed, dormant fraction over all their hidden units.
    """
    zeros, size, active = jnp.float32(0.0), 0, jnp.int32(0)
    acts, units = [], []
    for net, params, masks, hp, states in members:
        kernels = net.spec.kernel_leaves(masks)
        zeros = zeros + sum(jnp.float32(k.size) - jnp.sum(k, dtype=jnp.float32) for k in kernels)
        size += net.spec.num_kernel_params
        active = active + sp.active_params(masks)
        acts += list(net.activations(params, states))
        units += list(sp.hidden_unit_masks(net.spec, hp))
    return {"actual_sparsity": zeros / size, "active_params": active,
            "dormant_frac": sp.dormant_fraction(acts, tau, units)}


def gradient_snrs(sample_loss, params, batch, exists, masks, weights=None) -> jax.Array:
    """[grad_snr, grad_snr_active] of the per-sample gradients of `sample_loss(params, sample)`
    over `batch` (leading axis): over every entry in `exists`, and over active entries."""
    per_sample = jax.vmap(jax.grad(sample_loss), in_axes=(None, 0))(params, batch)
    return jnp.stack([sp.gradient_snr(per_sample, exists, weights),
                      sp.gradient_snr(per_sample, masks, weights)])
