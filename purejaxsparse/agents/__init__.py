"""Agents by name. Each is a class built from (env, static settings, eval env, run lengths)."""

from .base import METRICS, Agent
from .contract import AgentContract, AgentState
from .dqn import DQN
from .ppo import PPO
from .sac import SAC

AGENTS: dict[str, type[Agent]] = {"dqn": DQN, "ppo": PPO, "sac": SAC}

__all__ = ["AGENTS", "Agent", "AgentContract", "AgentState", "DQN", "METRICS"]
