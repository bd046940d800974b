"""What the actor-critic agents (PPO, SAC) share.

- `ActorCriticFields`: the sparse hyperparameters plus per-network targets: `actor_sparsity`,
  `critic_sparsity` (unset: use `sparsity`) and `actor_param_fraction`, a fixed-budget split
  (Graesser et al. 2022, Fig 3): the active kernel budget (1 - sparsity) * (N_actor + N_critic)
  is shared so the actor gets that fraction; each network's sparsity follows. All traced.
- `network_sparsities`: the per-network sparsity of one run from those fields.
- `network_hparams`: the sparse hparams of the actor and of the critics of one run.
- `actor_critic_metrics`: common.network_metrics of the actor, the critics and all of them, so
  results.csv keeps its base columns and gains per-network ones.
- tanh-squashed Gaussian and its std transform (SAC), diagonal Gaussian (PPO), action scaling
  to a Box, running mean/variance statistics (observation and reward normalisation).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from .. import sparse as sp
from ..fields import hfield
from ..sparse.hparams import DENSE_WIDTH
from ..sparse.masks import sparse_from_scratch
from .common import SparseNetwork, network_metrics

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


# -- actions ---------------------------------------------------------------------------------

def action_scale(box) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(center, half range) of a Box: env action = center + half * a for a in [-1, 1]."""
    low, high = jnp.asarray(box.low, jnp.float32), jnp.asarray(box.high, jnp.float32)
    return (high + low) / 2.0, (high - low) / 2.0


def to_env_action(a, box):
    center, half = action_scale(box)
    return center + half * a


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def squash_log_std(raw):
    """Network output -> log std in [LOG_STD_MIN, LOG_STD_MAX] (smoothly, via tanh)."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)


def policy_log_std(raw, squash):
    """SAC's log std from the actor's raw std outputs.

    TF-Agents' TanhNormalProjectionNetwork (std_transform=tf.exp, which the original keeps):
    std = exp(raw), unbounded; a Glorot-initialised output layer with zero bias starts it near
    1. `squash` (traced bool): the older bounded form, `squash_log_std` (initial std ~0.22).
    """
    return jnp.where(squash, squash_log_std(raw), raw)


def gaussian_log_prob(x, mean, log_std):
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def gaussian_entropy(log_std):
    return jnp.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


def tanh_gaussian_sample(key, mean, log_std, half_range=None):
    """Reparameterised sample a = tanh(u), u ~ N(mean, std): (a in (-1, 1), log pi(a)).

    With `half_range` the density is that of the env action center + half * a (the constant
    -sum log half is included, which matters for entropy tuning against -|A|).
    """
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    a = jnp.tanh(u)
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
    log_det = jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    log_prob = gaussian_log_prob(u, mean, log_std) - log_det
    if half_range is not None:
        log_prob = log_prob - jnp.sum(jnp.log(half_range))
    return a, log_prob


# -- running statistics (normalisation) --------------------------------------------------------

@struct.dataclass
class RunningStats:
    """Running mean and variance (parallel Welford), e.g. of observations."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape=()):
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.float32(1e-4))

    def update(self, batch) -> "RunningStats":
        """Merge a batch [N, *shape]."""
        batch = batch.reshape(-1, *self.mean.shape).astype(jnp.float32)
        n = jnp.float32(batch.shape[0])
        b_mean, b_var = batch.mean(0), batch.var(0)
        delta = b_mean - self.mean
        total = self.count + n
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta * delta * self.count * n / total
        return RunningStats(mean, m2 / total, total)


NORM_EPS = 1e-3  # TF-Agents TensorNormalizer.normalize variance_epsilon


def tf_normalizer(shape=()) -> RunningStats:
    """Empty statistics as TF-Agents' StreamingTensorNormalizer: mean 0, var 0, count 1e-8."""
    return RunningStats(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32), jnp.float32(1e-8))


def normalize(stats: RunningStats, x, clip, center=True, eps=NORM_EPS):
    """TF-Agents' TensorNormalizer.normalize: clip((x - mean) / sqrt(var + eps), +-clip), mean 0
    if not center."""
    mean = stats.mean if center else 0.0
    return jnp.clip((x - mean) / jnp.sqrt(stats.var + eps), -clip, clip)


# -- PPO's original init and clip -------------------------------------------------------------

def clip_jointly(grads, max_norm):
    """Scale a tree of gradients (e.g. (actor, critic)) so its global norm is at most max_norm."""
    return optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())[0]


def orthogonal_hidden(key, net: SparseNetwork, hp: sp.SparseHParams, params, masks, n_hidden: int):
    """Orthogonal hidden kernels (Keras Orthogonal(), gain 1) wherever the run keeps the network's
    own init (sp.init_kernels' dense case: neither sparsity-aware nor dense_width), masked."""
    own = ~(sparse_from_scratch(hp) & hp.sparse_init) & (hp.method != DENSE_WIDTH)
    kernels, kmasks = net.spec.kernel_leaves(params), net.spec.kernel_leaves(masks)
    for l in range(n_hidden):
        w = orthogonal_one_at_a_time(tuple(kernels[l].shape))(jax.random.fold_in(key, l))
        kernels[l] = jnp.where(own & kmasks[l], w, kernels[l])
    return net.spec.replace_kernels(params, kernels)


@functools.lru_cache(maxsize=None)
def orthogonal_one_at_a_time(shape: tuple[int, ...]):
    """key -> an orthogonal (gain 1) float32 kernel of `shape`; vmapped, one QR per key in turn.

    Batched, the QR is one LAPACK call that, on CPU with jaxlib 0.10, splits its batch onto
    XLA's intra-op thread pool and waits there: with every pool thread in such a QR, nothing
    runs the parts and the sweep's init hangs (seen with 2 cores and 4 runs of 2x64). Under
    vmap this maps over the keys instead (lax.map), which yields the same kernels."""
    @jax.custom_batching.custom_vmap
    def draw(key):
        return jax.nn.initializers.orthogonal()(key, shape, jnp.float32)

    @draw.def_vmap
    def draw_each(axis_size, in_batched, key):
        if not in_batched[0]:
            return draw(key), False
        return jax.lax.map(draw, key), True

    return draw
