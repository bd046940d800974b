"""PPO's Gaussian actor as the original's (rigl's `PPOActorNetwork`); its initialisation is the
agent's (agents/ppo_init.py).

mean = center + half * tanh(MLP(x)) with (center, half) of the action Box (the original's
`tanh_and_scale_to_spec`), so the mean always lies inside the bounds; std = softplus(`std_bias`),
one trainable value per action dimension, independent of the state (the original's BiasLayer on
zeros, initialised to softplus^-1(0.35) so the std starts at 0.35 in env action units).
`squash=False` (no bounds given) leaves the mean unbounded (the env clips the action).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .mlp import MLP

STD_INIT = 0.35
"""Initial std of the original (`std_bias_initializer_value = log(exp(0.35) - 1)`)."""


def softplus_inverse(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return math.log(math.expm1(y))


class GaussianMLP(nn.Module):
    """An MLP for the mean (`mean/layer_0..layer_L`) and a state-independent `std_bias` leaf.

    Returns (mean [B, out_dim], std [B, out_dim]). With `low`/`high` (one float per action
    dimension) the mean is tanh-squashed into [low, high]. `std_bias` is neither a kernel nor a
    bias, so sparse training never masks it (the original wraps only its Dense layers).
    """

    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    low: Optional[tuple[float, ...]] = None
    high: Optional[tuple[float, ...]] = None
    std_init: float = STD_INIT

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        raw, acts = MLP(self.hidden, self.out_dim, self.activation, name="mean")(x, return_activations=True)
        if self.low is None:
            mean = raw
        else:
            low, high = jnp.asarray(self.low, jnp.float32), jnp.asarray(self.high, jnp.float32)
            mean = (high + low) / 2.0 + (high - low) / 2.0 * jnp.tanh(raw)
        std_bias = self.param("std_bias", nn.initializers.constant(softplus_inverse(self.std_init)),
                              (self.out_dim,))
        out = (mean, jnp.broadcast_to(jax.nn.softplus(std_bias), mean.shape))
        return (out, acts) if return_activations else out


def gaussian_actor(hidden, box, activation: str, squash: bool, std_init: float) -> GaussianMLP:
    """The Gaussian actor for a Box (low/high arrays); squash needs finite bounds."""
    if not squash:
        return GaussianMLP(hidden, len(box.low), activation, std_init=std_init)
    if not (np.all(np.isfinite(box.low)) and np.all(np.isfinite(box.high))):
        raise ValueError(f"squash_mean needs finite action bounds; got [{box.low}, {box.high}]")
    return GaussianMLP(hidden, len(box.low), activation, tuple(map(float, box.low)),
                       tuple(map(float, box.high)), std_init)


