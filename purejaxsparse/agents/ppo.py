"""PPO with a sparse actor and a sparse critic (Graesser et al. 2022, "PPO MuJoCo" settings).

Separate actor and critic MLPs (2x64 tanh), each with its own masks, its own Adam state and
its own sparsity (`actor_sparsity`, `critic_sparsity`, or a fixed-budget `actor_param_fraction`
split; see actor_critic.py). Discrete actions: a categorical policy; continuous actions: a
diagonal Gaussian with a state-independent `log_std` leaf (never sparsified), actions in
[-1, 1] scaled to the env's Box. GAE(lambda), clipped surrogate, value loss, entropy bonus,
minibatch epochs, Adam with a linear learning-rate decay to 0 over training (from the
unbatched iteration index), global-norm clipping per network, L2 on kernels. A time-limit end
bootstraps with the value of `info["final_obs"]`; a termination does not. Optional running
observation normalisation and reward scaling, per run, in the state.

Mask schedules (update_interval/start/end) count minibatch updates: iteration t has done
t * epochs * (num_envs * rollout_steps / minibatch_size) of them before it starts.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import envs

from .. import sparse as sp
from ..fields import hfield
from ..nets import MLP
from ..nets.gaussian import GaussianMLP
from .actor_critic import (NETWORK_METRICS, ActorCriticFields, RunningStats, actor_critic_metrics,
                           gaussian_entropy, gaussian_log_prob, network_sparsities, to_env_action)
from .base import Agent
from .common import SparseNetwork, final_active_params, l2_penalty, masked_update


@dataclasses.dataclass(frozen=True)
class PPOStatic:
    """Static PPO settings (shapes and loop lengths: one value per sweep)."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = dataclasses.field(default="tanh", metadata={"choices": ("tanh", "relu")})
    num_envs: int = dataclasses.field(default=1, metadata={"min": 1})
    rollout_steps: int = dataclasses.field(default=2048, metadata={"min": 1})
    minibatch_size: int = dataclasses.field(default=64, metadata={"min": 1})
    epochs: int = dataclasses.field(default=10, metadata={"min": 1})
    normalize_obs: bool = True
    normalize_reward: bool = True
    dormant_tau: float = dataclasses.field(default=0.025, metadata={"min": 0.0})
    dormant_batch: int = dataclasses.field(default=256, metadata={"min": 1})


@struct.dataclass
class PPOHParams(ActorCriticFields):
    """Per-run (traced) PPO hyperparameters; defaults: the paper's PPO MuJoCo column."""

    # sparse schedule defaults in minibatch updates (1M env steps = ~156k updates)
    drop_fraction: jax.Array = hfield("float", 0.3, "SET/RigL initial drop fraction", low=0.0, high=1.0)
    update_interval: jax.Array = hfield("int", 500, "minibatch updates between mask updates", low=1)
    end: jax.Array = hfield("int", 120_000, "last minibatch update at which masks change", low=0)
    learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size (start of the linear decay)",
                                      low=0.0, low_open=True)
    adam_eps: jax.Array = hfield("float", 1e-5, "Adam epsilon", low=0.0, low_open=True)
    anneal_lr: jax.Array = hfield("bool", True, "decay the learning rate linearly to 0 over training")
    gamma: jax.Array = hfield("float", 0.99, "discount", low=0.0, high=1.0)
    gae_lambda: jax.Array = hfield("float", 0.95, "GAE lambda", low=0.0, high=1.0)
    clip_eps: jax.Array = hfield("float", 0.2, "surrogate clipping epsilon", low=0.0)
    vf_coef: jax.Array = hfield("float", 0.5, "value loss coefficient", low=0.0)
    ent_coef: jax.Array = hfield("float", 0.0, "entropy bonus coefficient", low=0.0)
    max_grad_norm: jax.Array = hfield("float", 0.5, "global-norm gradient clip (per network)",
                                      low=0.0, low_open=True)
    norm_adv: jax.Array = hfield("bool", True, "normalise advantages per minibatch")
    weight_decay: jax.Array = hfield("float", 1e-6, "L2 coefficient on kernels", low=0.0)


@struct.dataclass
class PPOState:
    actor_params: dict
    critic_params: dict
    actor_masks: dict
    critic_masks: dict
    actor_opt: tuple
    critic_opt: tuple
    env_state: envs.EnvState
    obs: jax.Array
    obs_stats: RunningStats
    return_stats: RunningStats
    returns: jax.Array          # running discounted return per env (reward scaling)
    recent_obs: jax.Array       # normalised states of the last rollout (dormant neurons)
    key: jax.Array


def _optimizer(hp, learning_rate) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm),
                       optax.adam(learning_rate, eps=hp.adam_eps))


HIDDEN_INIT = sp.InitSpec(2.0, "fan_in", "truncated_normal")   # ~ orthogonal(sqrt 2)
POLICY_INIT = sp.InitSpec(1e-4, "fan_in", "truncated_normal")  # ~ orthogonal(0.01)
VALUE_INIT = sp.InitSpec(1.0, "fan_in", "truncated_normal")    # ~ orthogonal(1)


class PPO(Agent):
    name = "ppo"
    HParams = PPOHParams
    Static = PPOStatic
    # Graesser et al.: pruning from 32k to 120k updates every 500; RigL 250 / 0.3 with weight
    # decay 1e-4; SET 100 / 0.
    method_defaults = {
        "prune": {"start": 32_000, "update_interval": 500},
        "rigl": {"update_interval": 250, "drop_fraction": 0.3, "weight_decay": 1e-4},
        "set": {"update_interval": 100, "drop_fraction": 0.0},
    }
    extra_metrics = NETWORK_METRICS

    def __init__(self, env, static: PPOStatic, eval_env, total_steps, eval_every, eval_episodes):
        space = env.action_space
        self.discrete = isinstance(space, envs.Discrete)
        if not self.discrete and len(space.shape) != 1:
            raise ValueError(f"PPO needs a flat action vector; {env.name} has action shape {space.shape}")
        batch = env.num_envs * static.rollout_steps
        if batch % static.minibatch_size:
            raise ValueError(f"agent_config.minibatch_size {static.minibatch_size} must divide "
                             f"num_envs * rollout_steps = {batch}")
        super().__init__(env, static, eval_env, total_steps, eval_every, eval_episodes)
        last = f"layer_{len(static.hidden)}/"
        if self.discrete:
            actor = MLP(hidden=static.hidden, out_dim=space.n, activation=static.activation)
        else:
            actor = GaussianMLP(hidden=static.hidden, out_dim=space.shape[0], activation=static.activation)
        self.actor = SparseNetwork.build(actor, env.obs_shape, inits={last: POLICY_INIT, "": HIDDEN_INIT})
        self.critic = SparseNetwork.build(MLP(hidden=static.hidden, out_dim=1, activation=static.activation),
                                          env.obs_shape, inits={last: VALUE_INIT, "": HIDDEN_INIT})
        self.batch_size = batch
        self.num_minibatches = batch // static.minibatch_size
        self.updates_per_iteration = static.epochs * self.num_minibatches
        self.num_iterations = max(1, total_steps // batch)
        n = min(static.dormant_batch, batch)
        self.dormant_rows = np.linspace(0, batch - 1, n).astype(np.int32)

    @property
    def transitions_per_iteration(self) -> int:
        return self.batch_size

    def networks(self):
        return {"actor": self.actor, "critic": self.critic}

    def sparsities(self, hp):
        """(actor, critic) target sparsity of one run."""
        return network_sparsities(hp, self.actor.spec.num_kernel_params, self.critic.spec.num_kernel_params)

    # -- policy -----------------------------------------------------------------------------
    def _normalize(self, stats: RunningStats, obs):
        return stats.normalize(obs) if self.static.normalize_obs else obs

    def _dist(self, params, obs):
        return self.actor.apply(params, obs)

    def _sample(self, key, params, obs):
        out = self._dist(params, obs)
        if self.discrete:
            action = jax.random.categorical(key, out, axis=-1)
            return action, self._log_prob(out, action)
        mean, log_std = out
        action = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return action, gaussian_log_prob(action, mean, log_std)

    def _log_prob(self, out, action):
        if self.discrete:
            logp = jax.nn.log_softmax(out, axis=-1)
            return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
        mean, log_std = out
        return gaussian_log_prob(action, mean, log_std)

    def _entropy(self, out):
        if self.discrete:
            logp = jax.nn.log_softmax(out, axis=-1)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
        return gaussian_entropy(out[1])

    def _env_action(self, action):
        if self.discrete:
            return action
        return to_env_action(jnp.clip(action, -1.0, 1.0), self.env.action_space)

    def _value(self, params, obs):
        return self.critic.apply(params, obs)[..., 0]

    # -- run --------------------------------------------------------------------------------
    def init(self, key, hp: PPOHParams) -> PPOState:
        k_actor, k_critic, k_env, key = jax.random.split(key, 4)
        s_actor, s_critic = self.sparsities(hp)
        actor_params, actor_masks = self.actor.init(k_actor, hp.sparse(s_actor))
        critic_params, critic_masks = self.critic.init(k_critic, hp.sparse(s_critic))
        env_state, obs = self.env.reset(k_env)
        tx = _optimizer(hp, hp.learning_rate)
        recent = jnp.zeros((len(self.dormant_rows), *self.env.obs_shape), jnp.float32)
        return PPOState(
            actor_params=actor_params, critic_params=critic_params, actor_masks=actor_masks,
            critic_masks=critic_masks, actor_opt=tx.init(actor_params), critic_opt=tx.init(critic_params),
            env_state=env_state, obs=obs, obs_stats=RunningStats.create(self.env.obs_shape),
            return_stats=RunningStats.create(), returns=jnp.zeros(self.env.num_envs, jnp.float32),
            recent_obs=recent, key=key)

    def _rollout(self, state: PPOState, hp, key):
        """Collect rollout_steps x num_envs transitions with the current policy."""
        stats = state.obs_stats

        def step(carry, k):
            env_state, obs, returns = carry
            k_act, k_env = jax.random.split(k)
            nobs = self._normalize(stats, obs)
            action, logp = self._sample(k_act, state.actor_params, nobs)
            value = self._value(state.critic_params, nobs)
            env_state, next_obs, reward, terminated, truncated, info = self.env.step(
                k_env, env_state, self._env_action(action))
            final_value = self._value(state.critic_params, self._normalize(stats, info["final_obs"]))
            done = terminated | truncated
            returns = returns * hp.gamma + reward
            out = dict(obs=obs, nobs=nobs, action=action, logp=logp, value=value, reward=reward,
                       done=done, truncated=truncated, final_value=final_value, ret=returns)
            return (env_state, next_obs, jnp.where(done, 0.0, returns)), out

        keys = jax.random.split(key, self.static.rollout_steps)
        (env_state, obs, returns), traj = jax.lax.scan(step, (state.env_state, state.obs, state.returns),
                                                        keys)
        last_value = self._value(state.critic_params, self._normalize(stats, obs))
        return env_state, obs, returns, traj, last_value

    def _gae(self, hp, rewards, values, dones, last_value):
        def back(carry, x):
            adv_next, v_next = carry
            r, v, d = x
            not_done = 1.0 - d.astype(jnp.float32)
            delta = r + hp.gamma * v_next * not_done - v
            adv = delta + hp.gamma * hp.gae_lambda * not_done * adv_next
            return (adv, v), adv

        _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), (rewards, values, dones),
                              reverse=True)
        return adv, adv + values

    def iteration(self, state: PPOState, hp, t):
        key, k_roll, k_train = jax.random.split(state.key, 3)
        env_state, obs, returns, traj, last_value = self._rollout(state, hp, k_roll)
        return_stats = state.return_stats
        reward = traj["reward"]
        if self.static.normalize_reward:
            return_stats = return_stats.update(traj["ret"])
            reward = jnp.clip(reward / jnp.sqrt(return_stats.var + 1e-8), -10.0, 10.0)
        # a time-limit end bootstraps from the value of the final observation
        reward = reward + hp.gamma * traj["final_value"] * traj["truncated"]
        adv, target = self._gae(hp, reward, traj["value"], traj["done"], last_value)
        obs_stats = state.obs_stats.update(traj["obs"]) if self.static.normalize_obs else state.obs_stats

        flat = lambda x: x.reshape(self.batch_size, *x.shape[2:])  # noqa: E731
        batch = {"obs": flat(traj["nobs"]), "action": flat(traj["action"]), "logp": flat(traj["logp"]),
                 "adv": flat(adv), "target": flat(target)}
        state = state.replace(env_state=env_state, obs=obs, returns=returns, obs_stats=obs_stats,
                              return_stats=return_stats, recent_obs=batch["obs"][self.dormant_rows], key=key)
        return self._train(state, hp, t, batch, k_train)

    def _loss(self, actor_params, critic_params, mb, hp):
        out = self._dist(actor_params, mb["obs"])
        logp = self._log_prob(out, mb["action"])
        ratio = jnp.exp(logp - mb["logp"])
        adv = mb["adv"]
        adv = jnp.where(hp.norm_adv, (adv - adv.mean()) / (adv.std() + 1e-8), adv)
        clipped = jnp.clip(ratio, 1.0 - hp.clip_eps, 1.0 + hp.clip_eps)
        pg_loss = jnp.maximum(-adv * ratio, -adv * clipped).mean()
        v_loss = 0.5 * jnp.square(self._value(critic_params, mb["obs"]) - mb["target"]).mean()
        entropy = self._entropy(out).mean()
        return (pg_loss - hp.ent_coef * entropy + hp.vf_coef * v_loss
                + l2_penalty(self.actor.spec, actor_params, hp.weight_decay)
                + l2_penalty(self.critic.spec, critic_params, hp.weight_decay))

    def _train(self, state: PPOState, hp, t, batch, key):
        s_actor, s_critic = self.sparsities(hp)
        hp_actor, hp_critic = hp.sparse(s_actor), hp.sparse(s_critic)
        frac = jnp.maximum(1.0 - jnp.asarray(t, jnp.float32) / self.num_iterations, 0.0)
        tx = _optimizer(hp, jnp.where(hp.anneal_lr, hp.learning_rate * frac, hp.learning_rate))
        base = t * self.updates_per_iteration
        nmb, mbs = self.num_minibatches, self.static.minibatch_size

        def minibatch(carry, xs):
            ap, cp, a_opt, c_opt, am, cm, key = carry
            mb, step = xs
            key, k_actor, k_critic = jax.random.split(key, 3)
            ap, cp = sp.apply_masks(ap, am), sp.apply_masks(cp, cm)  # grads at masked params
            g_actor, g_critic = jax.grad(self._loss, argnums=(0, 1))(ap, cp, mb, hp)
            ap, a_opt, am = masked_update(k_actor, self.actor, hp_actor, step, tx, ap, a_opt, am, g_actor)
            cp, c_opt, cm = masked_update(k_critic, self.critic, hp_critic, step, tx, cp, c_opt, cm, g_critic)
            return (ap, cp, a_opt, c_opt, am, cm, key), None

        def epoch(carry, e):
            key, k_perm = jax.random.split(carry[-1])
            perm = jax.random.permutation(k_perm, self.batch_size)
            shuffled = jax.tree.map(lambda x: x[perm].reshape(nmb, mbs, *x.shape[1:]), batch)
            steps = base + e * nmb + jnp.arange(nmb, dtype=jnp.int32) + 1
            carry, _ = jax.lax.scan(minibatch, (*carry[:-1], key), (shuffled, steps))
            return carry, None

        carry = (state.actor_params, state.critic_params, state.actor_opt, state.critic_opt,
                 state.actor_masks, state.critic_masks, key)
        carry, _ = jax.lax.scan(epoch, carry, jnp.arange(self.static.epochs, dtype=jnp.int32))
        ap, cp, a_opt, c_opt, am, cm, _ = carry
        return state.replace(actor_params=ap, critic_params=cp, actor_opt=a_opt, critic_opt=c_opt,
                             actor_masks=am, critic_masks=cm)

    # -- evaluation -------------------------------------------------------------------------
    def eval_policy(self, state: PPOState, hp):
        def policy(key, obs):
            out = self._dist(state.actor_params, self._normalize(state.obs_stats, obs))
            if self.discrete:
                return jnp.argmax(out, axis=-1)
            return self._env_action(out[0])
        return policy

    def evaluate(self, state: PPOState, hp, key, t) -> dict:
        returns = self.evaluation_returns(state, hp, key)
        s_actor, s_critic = self.sparsities(hp)
        states = state.recent_obs
        metrics = actor_critic_metrics(
            [(self.actor, state.actor_params, state.actor_masks, hp.sparse(s_actor), states)],
            [(self.critic, state.critic_params, state.critic_masks, hp.sparse(s_critic), states)],
            self.static.dormant_tau)
        return {"eval_return": returns.mean(), **metrics}

    def final_active_params(self, hp) -> jax.Array:
        s_actor, s_critic = self.sparsities(hp)
        return (final_active_params(self.actor, hp.sparse(s_actor))
                + final_active_params(self.critic, hp.sparse(s_critic)))
