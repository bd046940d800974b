"""What the actor-critic agents (PPO, SAC) share.

- `ActorCriticFields`: the sparse hyperparameters plus per-network targets: `actor_sparsity`,
  `critic_sparsity` (unset: use `sparsity`) and `actor_param_fraction`, a fixed-budget split
  (Graesser et al. 2022, Fig 3): the active kernel budget (1 - sparsity) * (N_actor + N_critic)
  is shared so the actor gets that fraction; each network's sparsity follows. All traced.
- `network_sparsities`: the per-network sparsity of one run from those fields.
- `network_hparams`: the sparse hparams of the actor and of the critics of one run.
- `actor_critic_metrics`: common.network_metrics of the actor, the critics and all of them, so
  results.csv keeps its base columns and gains per-network ones.
- `gaussian_log_prob`: the diagonal Gaussian's log density (SAC's squashed policy, PPO's actor).

What only one of them uses lives beside it: squashed_gaussian.py (SAC), normalizer.py and
ppo_init.py (PPO).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import struct

from .. import sparse as sp
from ..fields import hfield
from .common import network_metrics

MAX_NETWORK_SPARSITY = 0.999

NETWORK_METRICS = ("actual_sparsity_actor", "actual_sparsity_critic", "active_params_actor",
                   "active_params_critic", "dormant_frac_actor", "dormant_frac_critic")
"""Per-network extra results columns of every actor-critic agent."""


@struct.dataclass
class ActorCriticFields(sp.SparseHParams):
    """sparse.SparseHParams plus the per-network sparsity targets (traced, unset = -1)."""

    actor_sparsity: jax.Array = hfield(
        "float", None, "actor's target sparsity (null: sparsity)", low=0.0, high=1.0, high_open=True,
        optional=True)
    critic_sparsity: jax.Array = hfield(
        "float", None, "critic(s)' target sparsity (null: sparsity)", low=0.0, high=1.0, high_open=True,
        optional=True)
    actor_param_fraction: jax.Array = hfield(
        "float", None, "fixed budget (1 - sparsity) of all kernels, this fraction to the actor "
        "(null: off); overrides actor/critic_sparsity", low=0.0, high=1.0, optional=True)


def network_sparsities(hp: ActorCriticFields, n_actor: int, n_critic: int):
    """(actor sparsity, critic sparsity) of one run, traced.

    n_actor, n_critic: kernel weights of the actor and of all critics together. With
    actor_param_fraction f set, the budget B = (1 - sparsity) * (n_actor + n_critic) is split
    f * B to the actor and (1 - f) * B to the critics, each network's sparsity clipped to
    [0, 0.999] (a share above a network's size is lost, not moved to the other one).
    """
    s = jnp.asarray(hp.sparsity, jnp.float32)
    s_actor = jnp.where(hp.actor_sparsity >= 0, hp.actor_sparsity, s)
    s_critic = jnp.where(hp.critic_sparsity >= 0, hp.critic_sparsity, s)
    f = jnp.asarray(hp.actor_param_fraction, jnp.float32)
    budget = (1.0 - s) * float(n_actor + n_critic)
    split_actor = jnp.clip(1.0 - f * budget / n_actor, 0.0, MAX_NETWORK_SPARSITY)
    split_critic = jnp.clip(1.0 - (1.0 - f) * budget / n_critic, 0.0, MAX_NETWORK_SPARSITY)
    use_split = f >= 0
    return (jnp.where(use_split, split_actor, s_actor).astype(jnp.float32),
            jnp.where(use_split, split_critic, s_critic).astype(jnp.float32))


def network_hparams(hp: ActorCriticFields, n_actor: int, n_critic: int):
    """(actor, critic) sparse hparams of one run, each at its network's sparsity."""
    s_actor, s_critic = network_sparsities(hp, n_actor, n_critic)
    return hp.sparse(s_actor), hp.sparse(s_critic)


# -- metrics ---------------------------------------------------------------------------------

def actor_critic_metrics(actor: Sequence[tuple], critics: Sequence[tuple], tau) -> dict:
    """Base metrics over every network plus the per-network columns of NETWORK_METRICS."""
    out = {}
    for suffix, members in (("", list(actor) + list(critics)), ("_actor", actor), ("_critic", critics)):
        for k, v in network_metrics(members, tau).items():
            out[k + suffix] = v
    return out


def gaussian_log_prob(x, mean, log_std):
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


