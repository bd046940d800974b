"""gymnax backend: classic control and MinAtar, batched with vmap.

We call gymnax's per-env `reset_env` / `step_env` directly and let `envs.core.Env` do the time
limit and auto-reset, rather than using gymnax's `step`: that way the time limit is always
counted by us (truncated, never terminated) whatever a gymnax version folds into `is_terminal`,
and we get the pre-reset observation for bootstrapping.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .core import Box, Discrete, Env

# Names this adapter serves (all checked on gymnax 1.0.1).
GYMNAX_ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "Seaquest-MinAtar",
)


def _check_param(env: str, key: str, value, default) -> None:
    """An override must have its default's kind (int, number; arrays are not overridable),
    be finite, and a step limit must be >= 1."""
    is_int = isinstance(default, int) and not isinstance(default, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not isinstance(default, (int, float)):
        kind = "an integer" if is_int else "a number"
        raise ValueError(f"{env}: parameter {key!r} got {value!r}; allowed: {kind}")
    if is_int and not (isinstance(value, int) or float(value).is_integer()):
        raise ValueError(f"{env}: parameter {key!r} got {value!r}; allowed: an integer")
    if not math.isfinite(value):
        raise ValueError(f"{env}: parameter {key!r} got {value!r}; allowed: a finite number")
    if key == "max_steps_in_episode" and value < 1:
        raise ValueError(f"{env}: parameter {key!r} got {value!r}; allowed: an integer >= 1")


class GymnaxEnv(Env):
    """A gymnax environment with its EnvParams fixed at construction (kwargs replace fields)."""

    def __init__(self, name: str, num_envs: int = 1, **overrides):
        import gymnax

        if name not in GYMNAX_ENVS:
            raise ValueError(f"unknown gymnax env {name!r}; known: {', '.join(GYMNAX_ENVS)}")
        self._env, params = gymnax.make(name)
        allowed = [f.name for f in dataclasses.fields(params)]
        bad = [k for k in overrides if k not in allowed]
        if bad:
            raise ValueError(
                f"{name}: unknown parameter(s) {', '.join(map(repr, bad))}; "
                f"allowed: {', '.join(allowed)}"
            )
        for k, v in overrides.items():
            _check_param(name, k, v, getattr(params, k))
        self.params = params.replace(**overrides)
        self.name = name
        self.num_envs = int(num_envs)
        self.overrides = dict(overrides)
        self.max_episode_steps = int(self.params.max_steps_in_episode)
        self.pixel_obs = False
        self.binary_obs = name.endswith("-MinAtar")  # MinAtar: one boolean channel per object kind

        space = self._env.action_space(self.params)
        if hasattr(space, "n"):
            self.action_space = Discrete(int(space.n))
        else:
            shape = tuple(space.shape)
            self.action_space = Box(
                low=np.asarray(space.low, np.float32), high=np.asarray(space.high, np.float32), shape=shape
            )
        obs = jax.eval_shape(self._reset_one, jax.random.PRNGKey(0))[1]
        self.obs_shape = tuple(obs.shape)

    def _reset_one(self, key):
        obs, state = self._env.reset_env(key, self.params)
        return state, jnp.asarray(obs).astype(jnp.float32)

    def _step_one(self, key, inner, action):
        obs, state, reward, terminated, _ = self._env.step_env(key, inner, action, self.params)
        return state, jnp.asarray(obs).astype(jnp.float32), reward, terminated
