"""The one environment interface every backend implements.

An `Env` is a static Python object (closed over inside jit, never a jit argument) that runs a
batch of `num_envs` independent copies of one environment with a pure functional API:

    state, obs = env.reset(key)
    state, obs, reward, terminated, truncated, info = env.step(key, state, action)

Time limits and auto-reset live here, once, for all backends: a backend only says how to reset
and step ONE environment (`_reset_one`, `_step_one`), and whether that step ended the episode
naturally. This base class counts steps, declares truncation at `max_episode_steps`, keeps
termination and truncation apart (termination wins when both hold), resets finished envs and
hands back the finished episode's last observation as `info["final_obs"]`, so agents can
bootstrap on truncation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@dataclass(frozen=True)
class Discrete:
    """`n` actions, given to `step` as int32 [E]."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Box:
    """Continuous actions of `shape`, each component in [low, high]; given as float32 [E, *shape]."""

    low: np.ndarray
    high: np.ndarray
    shape: tuple[int, ...]

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "low", np.broadcast_to(np.asarray(self.low, np.float32), shape).copy())
        object.__setattr__(self, "high", np.broadcast_to(np.asarray(self.high, np.float32), shape).copy())

    def __eq__(self, other):
        return (
            isinstance(other, Box)
            and self.shape == other.shape
            and np.array_equal(self.low, other.low)
            and np.array_equal(self.high, other.high)
        )

    def __hash__(self):
        return hash((self.shape, self.low.tobytes(), self.high.tobytes()))


@struct.dataclass
class EnvState:
    """Batched env state: the backend's own state plus the step count of the current episode.

    `step` is int32 [E]; it is 0 right after a reset (also an auto-reset) and is what the time
    limit is checked against.
    """

    inner: Any
    step: jax.Array


def _strong(tree):
    """Drop weak types so reset and step give identically typed states (a stable scan carry)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


class Env:
    """Base class: batched, auto-resetting, time-limited env over E copies.

    Subclasses set `name`, `obs_shape`, `action_space`, `max_episode_steps`, `pixel_obs`,
    `binary_obs` and implement `_reset_one(key) -> (inner, obs)` and
    `_step_one(key, inner, action) -> (inner, obs, reward, terminated)` for ONE env. Equality and
    hashing go by (class, name, num_envs, overrides), so equal envs can share jit caches.
    """

    name: str
    num_envs: int
    obs_shape: tuple[int, ...]
    action_space: Discrete | Box
    max_episode_steps: int
    pixel_obs: bool = False
    binary_obs: bool = False      # every observation entry is 0 or 1 (replays store them as bits)
    checkpointable: bool = True   # the env state is a JAX pytree (False: it lives in a host pool)
    overrides: dict

    # ---- backend hooks (one env, unbatched) ----
    def _reset_one(self, key: jax.Array) -> tuple[Any, jax.Array]:
        raise NotImplementedError

    def _step_one(self, key: jax.Array, inner: Any, action: jax.Array):
        raise NotImplementedError

    # ---- public API ----
    def with_num_envs(self, num_envs: int) -> "Env":
        """The same environment (same params, shared backend objects) batched over `num_envs`."""
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        new = copy.copy(self)
        new.num_envs = int(num_envs)
        return new

    def reset(self, key: jax.Array) -> tuple[EnvState, jax.Array]:
        """Reset all E envs from one key. Returns (state, obs float32 [E, *obs_shape])."""
        keys = jax.random.split(key, self.num_envs)
        inner, obs = jax.vmap(self._reset_one)(keys)
        state = EnvState(inner=_strong(inner), step=jnp.zeros((self.num_envs,), jnp.int32))
        return state, obs.astype(jnp.float32)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array):
        """Step all E envs; finished ones are reset in place (see module docstring).

        Returns (state, obs, reward float32 [E], terminated bool [E], truncated bool [E], info)
        with info["final_obs"] the pre-reset observation (equal to obs where not done).
        """
        action = self._prepare_action(action)
        keys = jax.random.split(key, self.num_envs)
        limit = self.max_episode_steps

        def one(k, inner, t, a):
            k_step, k_reset = jax.random.split(k)
            inner_st, obs_st, reward, terminated = self._step_one(k_step, inner, a)
            obs_st = obs_st.astype(jnp.float32)
            terminated = jnp.asarray(terminated).astype(bool).reshape(())
            t = t + 1
            truncated = jnp.logical_and(t >= limit, jnp.logical_not(terminated))
            done = jnp.logical_or(terminated, truncated)
            inner_re, obs_re = self._reset_one(k_reset)
            inner_new = jax.tree.map(
                lambda r, s: jnp.where(done, r, s).astype(jnp.asarray(s).dtype), inner_re, inner_st
            )
            obs = jnp.where(done, obs_re.astype(jnp.float32), obs_st)
            t = jnp.where(done, 0, t).astype(jnp.int32)
            reward = jnp.asarray(reward, jnp.float32).reshape(())
            return inner_new, t, obs, reward, terminated, truncated, obs_st

        inner, t, obs, reward, terminated, truncated, final_obs = jax.vmap(one)(
            keys, state.inner, state.step, action
        )
        state = EnvState(inner=_strong(inner), step=t)
        return state, obs, reward, terminated, truncated, {"final_obs": final_obs}

    def _prepare_action(self, action: jax.Array) -> jax.Array:
        """Cast (and for Box, clip) the batched action to what the backend expects."""
        sp = self.action_space
        if isinstance(sp, Discrete):
            action = jnp.asarray(action).astype(jnp.int32).reshape((self.num_envs,))
        else:
            action = jnp.asarray(action, jnp.float32).reshape((self.num_envs, *sp.shape))
            action = jnp.clip(action, jnp.asarray(sp.low), jnp.asarray(sp.high))
        return action

    # ---- identity ----
    def _key(self):
        try:
            ov = tuple(sorted(self.overrides.items()))
            hash(ov)
        except TypeError:
            ov = id(self)
        return (type(self), self.name, self.num_envs, ov)

    def __eq__(self, other):
        return isinstance(other, Env) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        ov = "".join(f", {k}={v!r}" for k, v in sorted(self.overrides.items()))
        return f"{type(self).__name__}({self.name!r}, num_envs={self.num_envs}{ov})"
