"""Multi-layer perceptron."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


class MLP(nn.Module):
    """Dense layers `hidden` with `activation`, then a linear output of `out_dim` units."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "relu"
    out_bias: float = 0.0  # initial output bias (TF-Agents' classic-control Q-network: -0.2)

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        act = ACTIVATIONS[self.activation]
        x = x.reshape(x.shape[0], -1) if x.ndim > 2 else x
        acts = []
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width, name=f"layer_{i}")(x))
            acts.append(x)
        out = nn.Dense(self.out_dim, name=f"layer_{len(self.hidden)}",
                       bias_init=nn.initializers.constant(self.out_bias))(x)
        return (out, tuple(acts)) if return_activations else out
