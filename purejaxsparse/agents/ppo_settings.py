"""PPO's settings: the static ones (shapes, loops, model choices; one value per sweep) and the
traced per-run hyperparameters, with the original's values as defaults (rigl's PPO MuJoCo gin on
TF-Agents' PPOClipAgent)."""

from __future__ import annotations

import dataclasses

import jax
from flax import struct

from ..fields import hfield
from ..nets.gaussian import STD_INIT
from .actor_critic import ActorCriticFields
from .base import width_field

OBS_CLIP = 5.0       # its default clip_value (PPOPolicy normalises observations with defaults)
REWARD_CLIP = 10.0   # PPOAgent reward_norm_clipping
ADV_EPS = 1e-8       # variance epsilon of the per-minibatch advantage normalisation
REWARD_NORMS = ("rewards", "returns", "none")


@dataclasses.dataclass(frozen=True)
class PPOStatic:
    """Static PPO settings (shapes, loop lengths and model choices: one value per sweep)."""

    hidden: tuple[int, ...] = (64, 64)
    width: float = width_field()
    activation: str = dataclasses.field(default="tanh", metadata={"choices": ("tanh", "relu")})
    critic_activation: str = dataclasses.field(default="relu", metadata={"choices": ("relu", "tanh")})
    squash_mean: bool = True
    std_init: float = dataclasses.field(default=STD_INIT, metadata={"min": 1e-6})
    num_envs: int = dataclasses.field(default=1, metadata={"min": 1})
    rollout_steps: int = dataclasses.field(default=2048, metadata={"min": 1})
    minibatch_size: int = dataclasses.field(default=64, metadata={"min": 1})
    epochs: int = dataclasses.field(default=10, metadata={"min": 1})
    normalize_obs: bool = True
    reward_normalization: str = dataclasses.field(default="rewards", metadata={"choices": REWARD_NORMS})
    bootstrap_truncation: bool = False
    joint_grad_clip: bool = True
    dormant_tau: float = dataclasses.field(default=0.025, metadata={"min": 0.0})
    dormant_batch: int = dataclasses.field(default=256, metadata={"min": 1})
    grad_snr: bool = False
    snr_every: int = dataclasses.field(default=5000, metadata={"min": 1})


@struct.dataclass
class PPOHParams(ActorCriticFields):
    """Per-run (traced) PPO hyperparameters; defaults: the original's dense PPO MuJoCo gin."""

    drop_fraction: jax.Array = hfield("float", 0.3, "SET/RigL initial drop fraction", low=0.0, high=1.0)
    update_interval: jax.Array = hfield("int", 250, "minibatch updates between mask updates", low=1)
    end: jax.Array = hfield("int", 120_000, "last minibatch update at which masks change", low=0)
    learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size (start of the linear decay)",
                                      low=0.0, low_open=True)
    adam_eps: jax.Array = hfield("float", 1e-5, "Adam epsilon", low=0.0, low_open=True)
    anneal_lr: jax.Array = hfield("bool", True, "decay the learning rate linearly to 0 over training")
    gamma: jax.Array = hfield("float", 0.99, "discount", low=0.0, high=1.0)
    gae_lambda: jax.Array = hfield("float", 0.95, "GAE lambda", low=0.0, high=1.0)
    clip_eps: jax.Array = hfield("float", 0.2, "surrogate clipping epsilon", low=0.0)
    vf_coef: jax.Array = hfield("float", 0.5, "value loss: vf_coef * mean((V - target)^2)", low=0.0)
    ent_coef: jax.Array = hfield("float", 0.0, "entropy bonus coefficient", low=0.0)
    max_grad_norm: jax.Array = hfield("float", 0.5, "global-norm gradient clip (actor and critic together)",
                                      low=0.0, low_open=True)
    norm_adv: jax.Array = hfield("bool", True, "normalise advantages per minibatch")
    weight_decay: jax.Array = hfield("float", 1e-6, "L2 coefficient on kernels", low=0.0)
