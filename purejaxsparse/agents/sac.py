"""SAC with a sparse actor and sparse twin critics (Graesser et al. 2022, "SAC MuJoCo" settings).

Continuous actions only. Actor: 2x256 ReLU MLP giving the mean and (tanh-bounded) log std of
a tanh-squashed Gaussian, scaled to the env's Box. Twin critics: 2x256 ReLU MLPs on
(observation, action in [-1, 1]), each with its own masks and Adam state; their target copies
follow by Polyak averaging (tau) and are re-masked with the online masks after every soft
update. Automatic entropy tuning (log alpha with its own Adam, target entropy -|A|). Replay in
device memory (purejaxsparse/replay.py) with writes keyed on the unbatched iteration index;
uniform random actions during the initial collection; L2 on kernels. A time-limit end
bootstraps from `info["final_obs"]`; a termination does not.

Sparsity per network: `actor_sparsity`, `critic_sparsity` (both critics) or the fixed-budget
`actor_param_fraction` split (actor_critic.py). Mask schedules count gradient steps (one per
update of all networks).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs

from .. import replay
from .. import sparse as sp
from ..hparams import hfield
from ..nets import MLP
from .actor_critic import (NETWORK_METRICS, ActorCriticFields, action_scale, actor_critic_metrics,
                           network_sparsities, squash_log_std, tanh_gaussian_sample, to_env_action)
from .base import Agent
from .common import SparseNetwork, final_active_params, l2_penalty, masked_update

NUM_CRITICS = 2


@dataclasses.dataclass(frozen=True)
class SACStatic:
    """Static SAC settings (shapes and loop lengths: one value per sweep)."""

    hidden: tuple[int, ...] = (256, 256)
    num_envs: int = dataclasses.field(default=1, metadata={"min": 1})
    batch_size: int = dataclasses.field(default=256, metadata={"min": 1})
    buffer_size: int = dataclasses.field(default=1_000_000, metadata={"min": 1})
    learning_starts: int = dataclasses.field(default=1000, metadata={"min": 0})
    updates_per_iteration: int = dataclasses.field(default=1, metadata={"min": 1})
    dormant_tau: float = dataclasses.field(default=0.025, metadata={"min": 0.0})
    dormant_batch: int = dataclasses.field(default=256, metadata={"min": 1})


@struct.dataclass
class SACHParams(ActorCriticFields):
    """Per-run (traced) SAC hyperparameters; defaults: the paper's SAC MuJoCo column."""

    # sparse schedule defaults in gradient steps (1M env steps = ~1M updates)
    update_interval: jax.Array = hfield("int", 1000, "gradient steps between mask updates", low=1)
    end: jax.Array = hfield("int", 800_000, "last gradient step at which masks change", low=0)
    learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size of actor and critics",
                                      low=0.0, low_open=True)
    alpha_learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size of log alpha",
                                            low=0.0, low_open=True)
    adam_eps: jax.Array = hfield("float", 1e-8, "Adam epsilon", low=0.0, low_open=True)
    gamma: jax.Array = hfield("float", 0.99, "discount", low=0.0, high=1.0)
    tau: jax.Array = hfield("float", 0.005, "soft target update rate", low=0.0, high=1.0)
    weight_decay: jax.Array = hfield("float", 1e-4, "L2 coefficient on kernels", low=0.0)
    autotune: jax.Array = hfield("bool", True, "tune alpha towards the target entropy")
    init_alpha: jax.Array = hfield("float", 1.0, "initial (or, without autotune, fixed) alpha",
                                   low=0.0, low_open=True)
    target_entropy_scale: jax.Array = hfield("float", 1.0, "target entropy = -scale * |A|")


@struct.dataclass
class SACState:
    actor_params: dict
    actor_masks: dict
    actor_opt: tuple
    critic_params: tuple        # one params tree per critic
    critic_masks: tuple
    critic_opt: tuple
    target_params: tuple
    log_alpha: jax.Array
    alpha_opt: tuple
    env_state: envs.EnvState
    obs: jax.Array
    buffer: dict
    key: jax.Array


def _optimizer(hp) -> optax.GradientTransformation:
    return optax.adam(hp.learning_rate, eps=hp.adam_eps)


def _alpha_optimizer(hp) -> optax.GradientTransformation:
    return optax.adam(hp.alpha_learning_rate, eps=hp.adam_eps)


class SAC(Agent):
    name = "sac"
    HParams = SACHParams
    Static = SACStatic
    # Graesser et al.: pruning from 200k to 800k steps every 1000; RigL 1000 / 0.5 with weight
    # decay 1e-6; SET 250 / 0.3.
    method_defaults = {
        "prune": {"start": 200_000, "update_interval": 1000},
        "rigl": {"update_interval": 1000, "drop_fraction": 0.5, "weight_decay": 1e-6},
        "set": {"update_interval": 250, "drop_fraction": 0.3},
    }
    extra_metrics = NETWORK_METRICS

    def __init__(self, env, static: SACStatic, eval_env, total_steps, eval_every, eval_episodes):
        space = env.action_space
        if not isinstance(space, envs.Box):
            raise ValueError(f"SAC needs continuous actions; {env.name} has discrete ones")
        if len(space.shape) != 1 or len(env.obs_shape) != 1:
            raise ValueError(f"SAC needs flat observations and actions; {env.name} has obs "
                             f"{env.obs_shape} and actions {space.shape}")
        super().__init__(env, static, eval_env, total_steps, eval_every, eval_episodes)
        self.action_dim = space.shape[0]
        obs_dim = env.obs_shape[0]
        self.actor = SparseNetwork.build(MLP(hidden=static.hidden, out_dim=2 * self.action_dim),
                                         env.obs_shape, inits=sp.GLOROT_UNIFORM)
        self.critic = SparseNetwork.build(MLP(hidden=static.hidden, out_dim=1),
                                          (obs_dim + self.action_dim,), inits=sp.GLOROT_UNIFORM)
        self.capacity = max(1, static.buffer_size // env.num_envs)
        self.first_train_iter = max(0, -(-static.learning_starts // env.num_envs) - 1)

    def networks(self):
        return {"actor": self.actor, **{f"critic{i + 1}": self.critic for i in range(NUM_CRITICS)}}

    def sparsities(self, hp):
        """(actor, critic) target sparsity of one run (the critic's applies to both critics)."""
        return network_sparsities(hp, self.actor.spec.num_kernel_params,
                                  NUM_CRITICS * self.critic.spec.num_kernel_params)

    # -- networks ---------------------------------------------------------------------------
    def _policy(self, params, obs):
        mean, raw_log_std = jnp.split(self.actor.apply(params, obs), 2, axis=-1)
        return mean, squash_log_std(raw_log_std)

    def _sample(self, key, params, obs):
        """(action in [-1, 1], log-density of the env-scaled action)."""
        mean, log_std = self._policy(params, obs)
        return tanh_gaussian_sample(key, mean, log_std, action_scale(self.env.action_space)[1])

    def _q(self, params, obs, action):
        return self.critic.apply(params, jnp.concatenate([obs, action], axis=-1))[..., 0]

    def _min_q(self, critic_params, obs, action):
        return jnp.min(jnp.stack([self._q(p, obs, action) for p in critic_params]), axis=0)

    # -- run --------------------------------------------------------------------------------
    def init(self, key, hp: SACHParams) -> SACState:
        k_actor, k_env, key, *k_critics = jax.random.split(key, 3 + NUM_CRITICS)
        s_actor, s_critic = self.sparsities(hp)
        actor_params, actor_masks = self.actor.init(k_actor, hp.sparse(s_actor))
        critics = [self.critic.init(k, hp.sparse(s_critic)) for k in k_critics]
        critic_params = tuple(p for p, _ in critics)
        tx = _optimizer(hp)
        log_alpha = jnp.log(jnp.asarray(hp.init_alpha, jnp.float32))
        env_state, obs = self.env.reset(k_env)
        e = self.env.num_envs
        example = {"obs": obs, "next_obs": obs, "action": jnp.zeros((e, self.action_dim), jnp.float32),
                   "reward": jnp.zeros(e, jnp.float32), "terminated": jnp.zeros(e, bool)}
        return SACState(
            actor_params=actor_params, actor_masks=actor_masks, actor_opt=tx.init(actor_params),
            critic_params=critic_params, critic_masks=tuple(m for _, m in critics),
            critic_opt=tuple(tx.init(p) for p in critic_params), target_params=critic_params,
            log_alpha=log_alpha, alpha_opt=_alpha_optimizer(hp).init(log_alpha),
            env_state=env_state, obs=obs, buffer=replay.init_buffer(self.capacity, example),
            key=key)

    def iteration(self, state: SACState, hp, t):
        key, k_random, k_policy, k_env, k_train = jax.random.split(state.key, 5)
        warm = t * self.env.num_envs < self.static.learning_starts
        random = jax.random.uniform(k_random, (self.env.num_envs, self.action_dim), minval=-1.0, maxval=1.0)
        policy, _ = self._sample(k_policy, state.actor_params, state.obs)
        action = jnp.where(warm, random, policy)
        env_state, obs, reward, terminated, _, info = self.env.step(
            k_env, state.env_state, to_env_action(action, self.env.action_space))
        buffer = replay.add(state.buffer, t, {
            "obs": state.obs, "next_obs": info["final_obs"], "action": action,
            "reward": reward, "terminated": terminated})
        state = state.replace(env_state=env_state, obs=obs, buffer=buffer, key=key)
        since = t - self.first_train_iter

        def train(s):
            def one(s, u):
                step = since * self.static.updates_per_iteration + u + 1
                return self._update(s, hp, t, step, jax.random.fold_in(k_train, u)), None
            s, _ = jax.lax.scan(one, s, jnp.arange(self.static.updates_per_iteration, dtype=jnp.int32))
            return s

        return jax.lax.cond(since >= 0, train, lambda s: s, state)

    def _update(self, state: SACState, hp, t, step, key):
        k_sample, k_next, k_pi, k_actor, *k_critics = jax.random.split(key, 4 + NUM_CRITICS)
        batch = replay.sample(k_sample, state.buffer, t + 1, self.static.batch_size)
        s_actor, s_critic = self.sparsities(hp)
        hp_actor, hp_critic = hp.sparse(s_actor), hp.sparse(s_critic)
        tx = _optimizer(hp)
        alpha = jnp.exp(state.log_alpha)

        # critics: soft Bellman target from the target critics
        next_action, next_logp = self._sample(k_next, state.actor_params, batch["next_obs"])
        next_q = self._min_q(state.target_params, batch["next_obs"], next_action)
        target = batch["reward"] + hp.gamma * (1.0 - batch["terminated"]) * (next_q - alpha * next_logp)
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            td = self._q(params, batch["obs"], batch["action"]) - target
            return jnp.square(td).mean() + l2_penalty(self.critic.spec, params, hp.weight_decay)

        critic_params, critic_opt, critic_masks = [], [], []
        for i in range(NUM_CRITICS):
            p = sp.apply_masks(state.critic_params[i], state.critic_masks[i])  # dense gradient at masked params
            p, o, m = masked_update(k_critics[i], self.critic, hp_critic, step, tx, p, state.critic_opt[i],
                                    state.critic_masks[i], jax.grad(critic_loss)(p))
            critic_params.append(p)
            critic_opt.append(o)
            critic_masks.append(m)

        # actor: maximise min Q - alpha log pi with the updated critics
        def actor_loss(params):
            action, logp = self._sample(k_pi, params, batch["obs"])
            q = self._min_q(critic_params, batch["obs"], action)
            loss = (alpha * logp - q).mean() + l2_penalty(self.actor.spec, params, hp.weight_decay)
            return loss, logp

        ap = sp.apply_masks(state.actor_params, state.actor_masks)
        grads, logp = jax.grad(actor_loss, has_aux=True)(ap)
        ap, actor_opt, actor_masks = masked_update(k_actor, self.actor, hp_actor, step, tx, ap,
                                                   state.actor_opt, state.actor_masks, grads)

        # temperature
        target_entropy = -hp.target_entropy_scale * self.action_dim
        entropy_gap = jax.lax.stop_gradient(logp + target_entropy).mean()
        alpha_grad = jax.grad(lambda la: -la * entropy_gap)(state.log_alpha)
        updates, alpha_opt = _alpha_optimizer(hp).update(alpha_grad, state.alpha_opt, state.log_alpha)
        log_alpha = jnp.where(hp.autotune, optax.apply_updates(state.log_alpha, updates), state.log_alpha)
        alpha_opt = jax.tree.map(lambda n, o: jnp.where(hp.autotune, n, o), alpha_opt, state.alpha_opt)

        # targets: Polyak averaging, then the online masks (target masks = online masks)
        targets = tuple(
            sp.apply_masks(jax.tree.map(lambda p, q: hp.tau * p + (1.0 - hp.tau) * q, p, tp), m)
            for p, tp, m in zip(critic_params, state.target_params, critic_masks))
        return state.replace(
            actor_params=ap, actor_masks=actor_masks, actor_opt=actor_opt,
            critic_params=tuple(critic_params), critic_masks=tuple(critic_masks),
            critic_opt=tuple(critic_opt), target_params=targets, log_alpha=log_alpha, alpha_opt=alpha_opt)

    # -- evaluation -------------------------------------------------------------------------
    def eval_policy(self, state: SACState, hp):
        def policy(key, obs):
            mean, _ = self._policy(state.actor_params, obs)
            return to_env_action(jnp.tanh(mean), self.env.action_space)
        return policy

    def evaluate(self, state: SACState, hp, key, t) -> dict:
        k_eval, k_states = jax.random.split(key)
        returns = self.evaluation_returns(state, hp, k_eval)
        rows = jnp.minimum(t, self.capacity)
        batch = replay.sample(k_states, state.buffer, rows, self.static.dormant_batch)
        sa = jnp.concatenate([batch["obs"], batch["action"]], axis=-1)
        s_actor, s_critic = self.sparsities(hp)
        hp_critic = hp.sparse(s_critic)
        metrics = actor_critic_metrics(
            [(self.actor, state.actor_params, state.actor_masks, hp.sparse(s_actor), batch["obs"])],
            [(self.critic, p, m, hp_critic, sa) for p, m in zip(state.critic_params, state.critic_masks)],
            self.static.dormant_tau)
        return {"eval_return": returns.mean(), **metrics}

    def final_active_params(self, hp) -> jax.Array:
        s_actor, s_critic = self.sparsities(hp)
        return (final_active_params(self.actor, hp.sparse(s_actor))
                + NUM_CRITICS * final_active_params(self.critic, hp.sparse(s_critic)))

