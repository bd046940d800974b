"""Policy evaluation: per-episode returns of a policy, as a pure function usable under jit and vmap."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .core import Env


def evaluate(
    env: Env,
    policy_fn: Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    obs_noise_std: float | jax.Array = 0.0,
) -> jax.Array:
    """Return of the first episode of each of `num_episodes` parallel envs: float32 [num_episodes].

    Builds its own batch (`env.with_num_envs(num_episodes)`), so training envs are untouched.
    Steps until every env has finished its first episode (at most `env.max_episode_steps` steps,
    where the time limit ends it); rewards after an env's first end are ignored.
    `policy_fn(key, obs[B, *obs_shape]) -> action[B, ...]` sees the observation plus
    N(0, obs_noise_std) noise (uint8 pixels: on the raw 0..255 values, rounded and clipped back
    to uint8, so the network sees pixels as it always does); the env state is never
    noised. Pure: works under jit and vmap, with `obs_noise_std` possibly traced.
    """
    num_episodes = int(num_episodes)
    eval_env = env.with_num_envs(num_episodes)
    static_zero_noise = isinstance(obs_noise_std, (int, float)) and obs_noise_std == 0
    k_reset, key = jax.random.split(key)
    state, obs = eval_env.reset(k_reset)
    ret = jnp.zeros((num_episodes,), jnp.float32)
    done = jnp.zeros((num_episodes,), bool)

    def cond(carry):
        t, _, _, _, done, _ = carry
        return jnp.logical_and(t < eval_env.max_episode_steps, jnp.logical_not(jnp.all(done)))

    def body(carry):
        t, state, obs, ret, done, key = carry
        key, k_noise, k_pol, k_step = jax.random.split(key, 4)
        seen = obs
        if not static_zero_noise:
            noise = obs_noise_std * jax.random.normal(k_noise, obs.shape, jnp.float32)
            if obs.dtype == jnp.uint8:  # raw pixels stay pixels: round and clip to 0..255
                seen = jnp.clip(jnp.round(obs.astype(jnp.float32) + noise), 0, 255).astype(jnp.uint8)
            else:
                seen = obs + noise.astype(obs.dtype)
        action = policy_fn(k_pol, seen)
        state, obs, reward, terminated, truncated, _ = eval_env.step(k_step, state, action)
        ret = ret + jnp.where(done, 0.0, reward)
        done = done | terminated | truncated
        return t + 1, state, obs, ret, done, key

    carry = (jnp.int32(0), state, obs, ret, done, key)
    _, _, _, ret, _, _ = jax.lax.while_loop(cond, body, carry)
    return ret
