"""Agents by name. Each is a class built from (env, static settings, eval env, run lengths)."""

from .base import METRICS, Agent
from .dqn import DQN

AGENTS: dict[str, type[Agent]] = {"dqn": DQN}

__all__ = ["AGENTS", "Agent", "DQN", "METRICS"]
