"""One functional, batched, auto-resetting interface over gymnax, Brax (MJX) and EnvPool Atari.

    env = envs.make("CartPole-v1", num_envs=8, max_steps_in_episode=200)
    state, obs = env.reset(key)
    state, obs, reward, terminated, truncated, info = env.step(key, state, action)

Truncation (time limit) is reported apart from termination so agents bootstrap on it; finished
envs auto-reset and `info["final_obs"]` holds the finished episode's last observation.
Backends are imported lazily (brax takes seconds to import).
"""

from __future__ import annotations

from .brax_env import BRAX_ENVS
from .core import Box, Discrete, Env, EnvState
from .envpool_env import GRAESSER_GAMES, atari_games, game_name
from .evaluate import evaluate
from .gymnax_env import GYMNAX_ENVS

__all__ = ["make", "registered", "describe_registered", "Env", "EnvState", "Discrete", "Box", "evaluate",
           "GRAESSER_GAMES"]


def registered() -> list[str]:
    """All names `make` accepts (Atari games also as 'Pong-v5')."""
    return list(GYMNAX_ENVS) + list(BRAX_ENVS) + list(atari_games())


def describe_registered() -> str:
    """The accepted names in one short line (the Atari games are many)."""
    atari = f"; Atari (EnvPool): any of {len(atari_games())} ALE games, e.g. Pong, Breakout, MsPacman" \
        if atari_games() else ""
    return ", ".join(list(GYMNAX_ENVS) + list(BRAX_ENVS)) + atari


def is_registered(name: str) -> bool:
    return name in GYMNAX_ENVS or name in BRAX_ENVS or game_name(name) is not None


def make(name: str, num_envs: int = 1, **kwargs) -> Env:
    """Build env `name` batched over `num_envs`; kwargs override the env's parameters.

    gymnax: kwargs replace EnvParams fields (e.g. max_steps_in_episode=200).
    brax: episode_length (time limit, default 1000) and the brax env's constructor arguments.
    Atari ('Pong' or 'Pong-v5'): seed, max_episode_steps, repeat_action_probability, frame_skip.
    Unknown names or kwargs raise ValueError listing what is allowed.
    """
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if name in GYMNAX_ENVS:
        from .gymnax_env import GymnaxEnv

        return GymnaxEnv(name, num_envs=num_envs, **kwargs)
    if name in BRAX_ENVS:
        from .brax_env import BraxEnv

        return BraxEnv(name, num_envs=num_envs, **kwargs)
    if game_name(name) is not None:
        from .envpool_env import EnvPoolAtari

        return EnvPoolAtari(name, num_envs=num_envs, **kwargs)
    raise ValueError(f"unknown env {name!r}; registered: {describe_registered()}")
