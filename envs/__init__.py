"""One functional, batched, auto-resetting interface over gymnax and Brax (MJX) environments.

    env = envs.make("CartPole-v1", num_envs=8, max_steps_in_episode=200)
    state, obs = env.reset(key)
    state, obs, reward, terminated, truncated, info = env.step(key, state, action)

Truncation (time limit) is reported apart from termination so agents bootstrap on it; finished
envs auto-reset and `info["final_obs"]` holds the finished episode's last observation.
Backends are imported lazily (brax takes seconds to import).
"""

from __future__ import annotations

from envs.brax_env import BRAX_ENVS
from envs.core import Box, Discrete, Env, EnvState
from envs.evaluate import evaluate
from envs.gymnax_env import GYMNAX_ENVS

__all__ = ["make", "registered", "Env", "EnvState", "Discrete", "Box", "evaluate"]


def registered() -> list[str]:
    """All names `make` accepts."""
    return list(GYMNAX_ENVS) + list(BRAX_ENVS)


def make(name: str, num_envs: int = 1, **kwargs) -> Env:
    """Build env `name` batched over `num_envs`; kwargs override the env's parameters.

    gymnax: kwargs replace EnvParams fields (e.g. max_steps_in_episode=200).
    brax: episode_length (time limit, default 1000) and the brax env's constructor arguments.
    Unknown names or kwargs raise ValueError listing what is allowed.
    """
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if name in GYMNAX_ENVS:
        from envs.gymnax_env import GymnaxEnv

        return GymnaxEnv(name, num_envs=num_envs, **kwargs)
    if name in BRAX_ENVS:
        from envs.brax_env import BraxEnv

        return BraxEnv(name, num_envs=num_envs, **kwargs)
    raise ValueError(f"unknown env {name!r}; registered: {', '.join(registered())}")
