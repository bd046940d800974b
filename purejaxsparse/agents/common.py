"""Glue shared by the agents: a network with its sparse spec, the masked update, metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .. import sparse as sp
from ..sparse.hparams import PRUNE, RIGL, SET, STATIC


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
        return cls(module, tuple(input_shape), np.dtype(input_dtype), sp.SparseSpec.from_params(shapes, inits))

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


def masked_update(key, net: SparseNetwork, hp: sp.SparseHParams, grad_step, tx, params, opt_state,
                  masks, grads):
    """The scheduled mask update, then one optimizer step keeping masked weights at zero.

    grads: dense gradient w.r.t. the masked params on this step's batch; grad_step: this
    optimizer step's number, counting from 1 (the unit of update_interval/start/end). As in
    rigl's train steps, the mask updater runs first, at counter grad_step - 1 (so at 0, before
    any training, too) on the current weights and this batch's gradient, then the gradient is
    applied under the new mask.
    """
    params, opt_state, masks = sp.maybe_update_masks(key, net.spec, hp, grad_step - 1, params,
                                                     opt_state, masks, grads)
    params, opt_state = sp.masked_apply_gradients(tx, params, opt_state, grads, masks)
    return params, opt_state, masks


def l2_penalty(spec: sp.SparseSpec, params, weight_decay, output_layer: bool = True):
    """Keras-style L2 on kernels only: weight_decay * sum(w^2) (biases are not decayed).

    output_layer=False leaves the last kernel out (TF-Agents' classic-control Q-network has no
    regularizer on its output layer).
    """
    kernels = spec.kernel_leaves(params)
    kernels = kernels if output_layer else kernels[:-1]
    return weight_decay * sum(jnp.sum(jnp.square(k)) for k in kernels)


def network_metrics(net: SparseNetwork, params, masks, hp: sp.SparseHParams, states, tau) -> dict:
    """actual_sparsity, active_params and dormant_frac of one network on a batch of states."""
    _, overall = sp.kernel_sparsity(net.spec, masks)
    units = sp.hidden_unit_masks(net.spec, hp)
    return {
        "actual_sparsity": overall,
        "active_params": sp.active_params(masks),
        "dormant_frac": sp.dormant_fraction(net.activations(params, states), tau, units),
    }


def final_active_params(net: SparseNetwork, hp: sp.SparseHParams) -> jax.Array:
    """Active count a run ends with: static/SET/RigL/prune all end at the static mask's count."""
    m = hp.method
    ends_sparse = (m == STATIC) | (m == SET) | (m == RIGL) | (m == PRUNE)
    final = hp.replace(method=jnp.where(ends_sparse, STATIC, m), start=jnp.int32(0))
    return sp.active_params(sp.init_masks(jax.random.PRNGKey(0), net.spec, final))
