"""SAC's policy distribution: a tanh-squashed diagonal Gaussian scaled into the action Box, and
its std transform (TF-Agents' TanhNormalProjectionNetwork)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .actor_critic import gaussian_log_prob


def action_scale(box) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(center, half range) of a Box: env action = center + half * a for a in [-1, 1]."""
    low, high = jnp.asarray(box.low, jnp.float32), jnp.asarray(box.high, jnp.float32)
    return (high + low) / 2.0, (high - low) / 2.0


def to_env_action(a, box):
    center, half = action_scale(box)
    return center + half * a


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def squash_log_std(raw):
    """Network output -> log std in [LOG_STD_MIN, LOG_STD_MAX] (smoothly, via tanh)."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)


def policy_log_std(raw, squash):
    """SAC's log std from the actor's raw std outputs.

    TF-Agents' TanhNormalProjectionNetwork (std_transform=tf.exp, which the original keeps):
    std = exp(raw), unbounded; a Glorot-initialised output layer with zero bias starts it near
    1. `squash` (traced bool): the older bounded form, `squash_log_std` (initial std ~0.22).
    """
    return jnp.where(squash, squash_log_std(raw), raw)


def tanh_gaussian_sample(key, mean, log_std, half_range=None):
    """Reparameterised sample a = tanh(u), u ~ N(mean, std): (a in (-1, 1), log pi(a)).

    With `half_range` the density is that of the env action center + half * a (the constant
    -sum log half is included, which matters for entropy tuning against -|A|).
    """
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    a = jnp.tanh(u)
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
    log_det = jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    log_prob = gaussian_log_prob(u, mean, log_std) - log_det
    if half_range is not None:
        log_prob = log_prob - jnp.sum(jnp.log(half_range))
    return a, log_prob
