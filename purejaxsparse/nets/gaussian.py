"""Gaussian policy network with a state-independent log std (PPO on continuous actions)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .mlp import MLP


class GaussianMLP(nn.Module):
    """An MLP for the mean (`mean/layer_0..layer_L`, `out_dim` units) and a `log_std` param leaf.

    Returns (mean [B, out_dim], log_std [B, out_dim]). `log_std` is neither a kernel nor a
    bias, so sparse training never masks it.
    """

    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        mean, acts = MLP(self.hidden, self.out_dim, self.activation, name="mean")(x, return_activations=True)
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.out_dim,))
        out = (mean, jnp.broadcast_to(log_std, mean.shape))
        return (out, acts) if return_activations else out
