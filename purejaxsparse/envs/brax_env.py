"""Brax backend on the MJX physics pipeline (halfcheetah, hopper, walker2d, ant, humanoid).

We use the raw brax env (no brax wrappers) and let `envs.core.Env` add the time limit and the
auto-reset: brax's own EpisodeWrapper/AutoResetWrapper fold truncation into `done` and re-use
one cached initial state per env slot, whereas we need terminated (brax's `done`: the body fell)
and truncated (time limit) kept apart, and a freshly sampled initial state on every reset.
brax is imported lazily, only when a brax env is made, because importing it is slow.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .core import Box, Env

BRAX_ENVS = ("halfcheetah", "hopper", "walker2d", "ant", "humanoid")
DEFAULT_EPISODE_LENGTH = 1000


@contextlib.contextmanager
def _quiet():
    """Silence brax's 'not actively being maintained' notice and MJX's deprecation chatter."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*not actively being maintained.*")
        warnings.filterwarnings("ignore", message=r".*directly from `Data` is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*JAXopt is no longer maintained.*")
        yield


def _import_brax_envs():
    """Import brax.envs, swallowing the 'Failed to import warp' prints of mujoco.mjx (no GPU warp)."""
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):
        import brax.envs
    return brax.envs


class BraxEnv(Env):
    """A brax MJX env with our own time limit (`episode_length`, default 1000) and auto-reset.

    Other kwargs go to the brax env constructor (e.g. terminate_when_unhealthy, reset_noise_scale).
    Actions are a Box given by the actuators' ctrlrange ([-1, 1] for all five envs here except
    humanoid's, read from the model).
    """

    def __init__(self, name: str, num_envs: int = 1, **overrides):
        if name not in BRAX_ENVS:
            raise ValueError(f"unknown brax env {name!r}; known: {', '.join(BRAX_ENVS)}")
        benvs = _import_brax_envs()
        cls = benvs._envs[name]
        allowed = ["episode_length", "n_frames"] + [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in ("self", "backend") and p.kind is not p.VAR_KEYWORD
        ]
        bad = [k for k in overrides if k not in allowed]
        if bad:
            raise ValueError(
                f"{name}: unknown parameter(s) {', '.join(map(repr, bad))}; "
                f"allowed: {', '.join(allowed)}"
            )
        ctor = {k: v for k, v in overrides.items() if k != "episode_length"}
        with _quiet():
            self._env = benvs.get_environment(name, backend="mjx", **ctor)
        self.name = name
        self.num_envs = int(num_envs)
        self.overrides = dict(overrides)
        self.max_episode_steps = int(overrides.get("episode_length", DEFAULT_EPISODE_LENGTH))
        if self.max_episode_steps < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.max_episode_steps}")
        self.pixel_obs = False
        # brax's `observation_size` runs an eager (un-jitted) reset: ~40 s on CPU. Trace instead.
        obs = jax.eval_shape(self._reset_one, jax.random.PRNGKey(0))[1]
        self.obs_shape = tuple(obs.shape)

        act = int(self._env.action_size)
        low, high = -np.ones(act, np.float32), np.ones(act, np.float32)
        sys = self._env.sys
        ctrlrange = getattr(sys, "actuator_ctrlrange", None)
        limited = getattr(sys, "actuator_ctrllimited", None)
        if ctrlrange is not None and limited is not None:
            ctrlrange = np.asarray(ctrlrange, np.float32)
            limited = np.asarray(limited, bool)
            low = np.where(limited, ctrlrange[:, 0], low).astype(np.float32)
            high = np.where(limited, ctrlrange[:, 1], high).astype(np.float32)
        self.action_space = Box(low=low, high=high, shape=(act,))

    def _reset_one(self, key):
        with _quiet():
            s = self._env.reset(key)
        return s, s.obs.astype(jnp.float32)

    def _step_one(self, key, inner, action):
        del key  # brax dynamics are deterministic
        with _quiet():
            s = self._env.step(inner, action)
        return s, s.obs.astype(jnp.float32), s.reward, s.done > 0.5
