"""SAC with a sparse actor and sparse twin critics, as the original (Graesser et al. 2022:
rigl/rl/tfagents/sac_train_eval.py on TF-Agents' SacAgent, configs/sac_mujoco_*_config.gin).

Continuous actions only. Actor: 2x256 ReLU MLP giving the mean and log std of a tanh-squashed
Gaussian scaled to the env's Box (TF-Agents' TanhNormalProjectionNetwork: std = exp(raw),
unbounded). Twin critics: 2x256 ReLU MLPs on (observation, action in the env's Box units), each
with its own masks and Adam state; their target copies follow by Polyak averaging (tau) and are
re-masked with the online masks after every soft update. TD target: reward_scale * r +
gamma * (1 - terminated) * (min target Q - alpha log pi); critic loss 0.5 x (mean squared TD
error + L2), TF-Agents' critic_loss_weight. Automatic entropy tuning (log alpha with its own
Adam, target entropy -|A|/2, TF-Agents' default), on a fresh sample of the just-updated actor.
Adam with Keras' epsilon 1e-7. Replay in device memory (purejaxsparse/replay.py) with writes
keyed on the unbatched iteration index; uniform random actions during the initial collection;
Keras-style L2 (wd * sum w^2) on every kernel, output layers included, biases not. A time-limit
end bootstraps from `info["final_obs"]`; a termination does not.

Named options (original's value first): `reward_scale` 0.1 (1.0: unscaled rewards),
`target_entropy_scale` 0.5 (1.0: the SAC paper's -|A|), `std_transform` exp (tanh_log_std:
log std squashed into [-5, 2]), `critic_unit_actions` false (true: critics see actions in
[-1, 1]). Known remaining difference: Keras applies Adam's epsilon before bias correction,
optax after (the same after the first few thousand steps).

Sparsity per network: `actor_sparsity`, `critic_sparsity` (both critics) or the fixed-budget
`actor_param_fraction` split (actor_critic.py). Mask schedules count gradient steps (one per
update of all networks).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from .. import envs

from .. import replay
from .. import sparse as sp
from ..fields import hfield
from ..nets import MLP, scaled_all
from .actor_critic import NETWORK_METRICS, ActorCriticFields, actor_critic_metrics, network_hparams
from .squashed_gaussian import action_scale, policy_log_std, tanh_gaussian_sample, to_env_action
from ..policy_arrays import PolicyArrays, mlp_layers
from .base import Agent, sparse_groups, width_field
from .common import OffPolicySchedule, SparseNetwork, l2_penalty

NUM_CRITICS = 2
CRITIC_LOSS_WEIGHT = 0.5  # TF-Agents SacAgent's critic_loss_weight default (the original keeps it)
STD_TRANSFORMS = ("exp", "tanh_log_std")
TANH_LOG_STD = STD_TRANSFORMS.index("tanh_log_std")

# Per-method settings of the original's gin files (rigl/rl/tfagents/configs/):
# static, SET and RigL share sac_mujoco_sparse_config.gin: weight decay 1e-6 (line 11), mask
# updates every 1000 steps (19), drop fraction 0.5 with cosine decay (18, 20), last update at
# 800k (22). Pruning (sac_mujoco_pruning_config.gin): 200k -> 800k every 1000 (21-23) with the
# dense weight decay 1e-4 (sac_mujoco_dense_config.gin:7, the default here).
SPARSE_GIN = {"update_interval": 1000, "drop_fraction": 0.5, "end": 800_000, "weight_decay": 1e-6}
PRUNE_GIN = {"start": 200_000, "end": 800_000, "update_interval": 1000}


@dataclasses.dataclass(frozen=True)
class SACStatic:
    """Static SAC settings (shapes and loop lengths: one value per sweep)."""

    hidden: tuple[int, ...] = (256, 256)
    width: float = width_field()
    num_envs: int = dataclasses.field(default=1, metadata={"min": 1})
    batch_size: int = dataclasses.field(default=256, metadata={"min": 1})
    buffer_size: int = dataclasses.field(default=1_000_000, metadata={"min": 1})
    learning_starts: int = dataclasses.field(default=1000, metadata={"min": 0})  # dense gin:4
    updates_per_iteration: int = dataclasses.field(default=1, metadata={"min": 1})
    dormant_tau: float = dataclasses.field(default=0.025, metadata={"min": 0.0})
    dormant_batch: int = dataclasses.field(default=256, metadata={"min": 1})


@struct.dataclass
class SACHParams(ActorCriticFields):
    """Per-run (traced) SAC hyperparameters; defaults: the original's (dense gin, sac_train_eval.py
    train_eval and TF-Agents' SacAgent defaults)."""

    # sparse schedule defaults in gradient steps (1M env steps = ~1M updates)
    update_interval: jax.Array = hfield("int", 1000, "gradient steps between mask updates", low=1)
    end: jax.Array = hfield("int", 800_000, "last gradient step at which masks change", low=0)
    learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size of actor and critics",
                                      low=0.0, low_open=True)
    alpha_learning_rate: jax.Array = hfield("float", 3e-4, "Adam step size of log alpha",
                                            low=0.0, low_open=True)
    adam_eps: jax.Array = hfield("float", 1e-7, "Adam epsilon (Keras' default)", low=0.0, low_open=True)
    gamma: jax.Array = hfield("float", 0.99, "discount", low=0.0, high=1.0)
    tau: jax.Array = hfield("float", 0.005, "soft target update rate", low=0.0, high=1.0)
    weight_decay: jax.Array = hfield("float", 1e-4, "L2 coefficient on every kernel (not biases)",
                                     low=0.0)
    autotune: jax.Array = hfield("bool", True, "tune alpha towards the target entropy")
    init_alpha: jax.Array = hfield("float", 1.0, "initial (or, without autotune, fixed) alpha",
                                   low=0.0, low_open=True)
    target_entropy_scale: jax.Array = hfield(
        "float", 0.5, "target entropy = -scale * |A| (TF-Agents: 0.5; SAC paper: 1.0)")
    reward_scale: jax.Array = hfield(
        "float", 0.1, "rewards are multiplied by this in the TD target (TF-Agents' reward_scale_factor)")
    std_transform: jax.Array = hfield(
        "choice", "exp", "policy std from the raw output: exp (TF-Agents, unbounded) or "
        "tanh_log_std (log std squashed into [-5, 2])", choices=STD_TRANSFORMS)
    critic_unit_actions: jax.Array = hfield(
        "bool", False, "critics see actions in [-1, 1] instead of the env's Box units (original)")


@struct.dataclass
class SACState:
    actor_params: dict
    actor_opt: sp.SparseState   # the actor's masks, Adam state and optimizer-step count
    critic_params: tuple        # one params tree per critic
    critic_opt: tuple           # one SparseState per critic
    target_params: tuple
    log_alpha: jax.Array
    alpha_opt: tuple
    env_state: envs.EnvState
    obs: jax.Array
    buffer: dict
    key: jax.Array

    @property
    def actor_masks(self) -> dict:
        return sp.sparse_masks(self.actor_opt)

    @property
    def critic_masks(self) -> tuple:
        return tuple(sp.sparse_masks(o) for o in self.critic_opt)


def _optimizers(actor: SparseNetwork, critic: SparseNetwork, hp):
    """(actor, critic) sparse optimizers around Adam of the run's step size."""
    return (sp.sparse_adam(actor.spec, hp.learning_rate, eps=hp.adam_eps),
            sp.sparse_adam(critic.spec, hp.learning_rate, eps=hp.adam_eps))


def _alpha_optimizer(hp) -> optax.GradientTransformation:
    return optax.adam(hp.alpha_learning_rate, eps=hp.adam_eps)


class SAC(Agent):
    name = "sac"
    HParams = SACHParams
    Static = SACStatic
    method_defaults = {"static": {"weight_decay": SPARSE_GIN["weight_decay"]},
                       "set": dict(SPARSE_GIN), "rigl": dict(SPARSE_GIN), "prune": dict(PRUNE_GIN)}
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
        hidden = scaled_all(static.hidden, static.width)
        self.actor = SparseNetwork.build(MLP(hidden=hidden, out_dim=2 * self.action_dim),
                                         env.obs_shape, inits=sp.GLOROT_UNIFORM)
        self.critic = SparseNetwork.build(MLP(hidden=hidden, out_dim=1),
                                          (obs_dim + self.action_dim,), inits=sp.GLOROT_UNIFORM)
        self.schedule = OffPolicySchedule.of(static.buffer_size, static.learning_starts, env.num_envs)

    def networks(self):
        return {"actor": self.actor, **{f"critic{i + 1}": self.critic for i in range(NUM_CRITICS)}}

    def network_hparams(self, hp):
        """(actor, critic) sparse hparams of one run (the critic's apply to both critics)."""
        return network_hparams(hp, self.actor.spec.num_kernel_params,
                               NUM_CRITICS * self.critic.spec.num_kernel_params)

    # -- networks ---------------------------------------------------------------------------
    def _policy(self, params, obs, hp):
        """(mean, log std) of the pre-tanh Gaussian: the first |A| outputs, then the std ones."""
        mean, raw_std = jnp.split(self.actor.apply(params, obs), 2, axis=-1)
        return mean, policy_log_std(raw_std, hp.std_transform == TANH_LOG_STD)

    def _sample(self, key, params, obs, hp):
        """(action in [-1, 1], log-density of the env-scaled action)."""
        mean, log_std = self._policy(params, obs, hp)
        return tanh_gaussian_sample(key, mean, log_std, action_scale(self.env.action_space)[1])

    def _critic_input(self, obs, action, hp):
        """(obs, action) as the critics see it: the action in the env's Box units (TF-Agents'
        critics take env actions), or in [-1, 1] with critic_unit_actions."""
        env_action = to_env_action(action, self.env.action_space)
        return jnp.concatenate([obs, jnp.where(hp.critic_unit_actions, action, env_action)], axis=-1)

    def _q(self, params, obs, action, hp):
        return self.critic.apply(params, self._critic_input(obs, action, hp))[..., 0]

    def _min_q(self, critic_params, obs, action, hp):
        return jnp.min(jnp.stack([self._q(p, obs, action, hp) for p in critic_params]), axis=0)

    # -- losses (TF-Agents' SacAgent) ----------------------------------------------------------
    def _td_target(self, key, hp, actor_params, target_params, batch, alpha):
        """reward_scale * r + gamma * (1 - terminated) * (min target Q(s', a') - alpha log pi(a'|s'))."""
        next_action, next_logp = self._sample(key, actor_params, batch["next_obs"], hp)
        next_q = self._min_q(target_params, batch["next_obs"], next_action, hp)
        soft_next = hp.gamma * (1.0 - batch["terminated"]) * (next_q - alpha * next_logp)
        return jax.lax.stop_gradient(hp.reward_scale * batch["reward"] + soft_next)

    def _critic_loss(self, params, hp, batch, target):
        """One critic's share of TF-Agents' critic loss: 0.5 x (batch mean of the squared TD
        error + its L2); the 0.5 is critic_loss_weight."""
        td = self._q(params, batch["obs"], batch["action"], hp) - target
        l2 = l2_penalty(self.critic.spec, params, hp.weight_decay)
        return CRITIC_LOSS_WEIGHT * (jnp.square(td).mean() + l2)

    def _alpha_loss(self, log_alpha, logp, hp):
        """-log alpha * mean(log pi + target entropy), target entropy -target_entropy_scale * |A|."""
        target_entropy = -hp.target_entropy_scale * self.action_dim
        return -log_alpha * jax.lax.stop_gradient(logp + target_entropy).mean()

    # -- run --------------------------------------------------------------------------------
    def init(self, key, hp: SACHParams) -> SACState:
        k_actor, k_env, key, *k_critics = jax.random.split(key, 3 + NUM_CRITICS)
        hp_actor, hp_critic = self.network_hparams(hp)
        actor_params, actor_masks = self.actor.init(k_actor, hp_actor)
        critics = [self.critic.init(k, hp_critic) for k in k_critics]
        critic_params = tuple(p for p, _ in critics)
        actor_tx, critic_tx = _optimizers(self.actor, self.critic, hp)
        log_alpha = jnp.log(jnp.asarray(hp.init_alpha, jnp.float32))
        env_state, obs = self.env.reset(k_env)
        e = self.env.num_envs
        example = {"obs": obs, "next_obs": obs, "action": jnp.zeros((e, self.action_dim), jnp.float32),
                   "reward": jnp.zeros(e, jnp.float32), "terminated": jnp.zeros(e, bool)}
        return SACState(
            actor_params=actor_params, actor_opt=sp.with_masks(actor_tx.init(actor_params), actor_masks),
            critic_params=critic_params, critic_opt=tuple(sp.with_masks(critic_tx.init(p), m) for p, m in critics),
            target_params=critic_params,
            log_alpha=log_alpha, alpha_opt=_alpha_optimizer(hp).init(log_alpha),
            env_state=env_state, obs=obs, buffer=replay.init_buffer(self.schedule.capacity, example),
            key=key)

    def iteration(self, state: SACState, hp, t):
        key, k_random, k_policy, k_env, k_train = jax.random.split(state.key, 5)
        warm = t * self.env.num_envs < self.static.learning_starts
        random = jax.random.uniform(k_random, (self.env.num_envs, self.action_dim), minval=-1.0, maxval=1.0)
        policy, _ = self._sample(k_policy, state.actor_params, state.obs, hp)
        action = jnp.where(warm, random, policy)
        env_state, obs, reward, terminated, _, info = self.env.step(
            k_env, state.env_state, to_env_action(action, self.env.action_space))
        buffer = replay.add(state.buffer, t, {
            "obs": state.obs, "next_obs": info["final_obs"], "action": action,
            "reward": reward, "terminated": terminated})
        state = state.replace(env_state=env_state, obs=obs, buffer=buffer, key=key)
        train_now, _ = self.schedule.due(t)

        def train(s):
            def one(s, u):
                return self._update(s, hp, t, jax.random.fold_in(k_train, u)), None
            s, _ = jax.lax.scan(one, s, jnp.arange(self.static.updates_per_iteration, dtype=jnp.int32))
            return s

        return jax.lax.cond(train_now, train, lambda s: s, state)

    def _update(self, state: SACState, hp, t, key):
        k_sample, k_next, k_pi, k_alpha, k_actor, *k_critics = jax.random.split(key, 5 + NUM_CRITICS)
        batch = replay.sample(k_sample, state.buffer, t + 1, self.static.batch_size)
        hp_actor, hp_critic = self.network_hparams(hp)
        actor_tx, critic_tx = _optimizers(self.actor, self.critic, hp)
        alpha = jnp.exp(state.log_alpha)

        # critics: soft Bellman target from the target critics
        target = self._td_target(k_next, hp, state.actor_params, state.target_params, batch, alpha)
        critic_grad = jax.grad(lambda p: self._critic_loss(p, hp, batch, target))  # masked p: dense gradient
        critic_params, critic_opt = [], []
        for p, o, k in zip(state.critic_params, state.critic_opt, k_critics):
            updates, o = critic_tx.update(critic_grad(p), o, p, key=k, hparams=hp_critic)
            critic_params.append(optax.apply_updates(p, updates))
            critic_opt.append(o)

        # actor: maximise min Q - alpha log pi with the updated critics
        def actor_loss(params):
            action, logp = self._sample(k_pi, params, batch["obs"], hp)
            q = self._min_q(critic_params, batch["obs"], action, hp)
            return (alpha * logp - q).mean() + l2_penalty(self.actor.spec, params, hp.weight_decay)

        updates, actor_opt = actor_tx.update(jax.grad(actor_loss)(state.actor_params), state.actor_opt,
                                             state.actor_params, key=k_actor, hparams=hp_actor)
        ap = optax.apply_updates(state.actor_params, updates)

        # temperature, on a fresh sample of the updated actor (TF-Agents: alpha_loss after the actor step)
        _, logp = self._sample(k_alpha, ap, batch["obs"], hp)
        alpha_grad = jax.grad(self._alpha_loss)(state.log_alpha, logp, hp)
        updates, alpha_opt = _alpha_optimizer(hp).update(alpha_grad, state.alpha_opt, state.log_alpha)
        log_alpha = jnp.where(hp.autotune, optax.apply_updates(state.log_alpha, updates), state.log_alpha)
        alpha_opt = jax.tree.map(lambda n, o: jnp.where(hp.autotune, n, o), alpha_opt, state.alpha_opt)

        # targets: Polyak averaging, then the online masks (target masks = online masks)
        targets = tuple(
            sp.apply_masks(jax.tree.map(lambda p, q: hp.tau * p + (1.0 - hp.tau) * q, p, tp), m)
            for p, tp, m in zip(critic_params, state.target_params, map(sp.sparse_masks, critic_opt)))
        return state.replace(
            actor_params=ap, actor_opt=actor_opt, critic_params=tuple(critic_params), critic_opt=tuple(critic_opt),
            target_params=targets, log_alpha=log_alpha, alpha_opt=alpha_opt)

    # -- evaluation -------------------------------------------------------------------------
    def eval_policy(self, state: SACState, hp):
        def policy(key, obs):
            mean, _ = self._policy(state.actor_params, obs, hp)
            return to_env_action(jnp.tanh(mean), self.env.action_space)
        return policy

    def evaluate(self, state: SACState, hp, key, t) -> dict:
        k_eval, k_states = jax.random.split(key)
        returns = self.evaluation_returns(state, hp, k_eval)
        rows = self.schedule.rows_written(t)
        batch = replay.sample(k_states, state.buffer, rows, self.static.dormant_batch)
        sa = self._critic_input(batch["obs"], batch["action"], hp)
        hp_actor, hp_critic = self.network_hparams(hp)
        metrics = actor_critic_metrics(
            [(self.actor, state.actor_params, state.actor_masks, hp_actor, batch["obs"])],
            [(self.critic, p, m, hp_critic, sa) for p, m in zip(state.critic_params, state.critic_masks)],
            self.static.dormant_tau)
        return {"eval_return": returns.mean(), **metrics}

    def final_active_params(self, hp) -> jax.Array:
        hp_actor, hp_critic = self.network_hparams(hp)
        return (sp.final_active_params(self.actor.spec, hp_actor)
                + NUM_CRITICS * sp.final_active_params(self.critic.spec, hp_critic))

    def sparse_networks(self, hp):
        hp_actor, hp_critic = self.network_hparams(hp)
        return [("actor", self.actor, hp_actor), ("critic", self.critic, hp_critic)]

    def optimizer_steps(self) -> tuple[int, str]:
        s = self.static
        rounds = self.schedule.rounds(self.total_steps // self.env.num_envs)
        return rounds * s.updates_per_iteration, (
            f"{s.updates_per_iteration} every {self.env.num_envs} env step(s) from env step "
            f"{max(s.learning_starts, 1):,} on (learning_starts)")

    def state_groups(self, state: SACState) -> dict:
        groups = sparse_groups(state.actor_opt, *state.critic_opt)
        groups["optimizer"].append(state.alpha_opt)
        return {"replay": state.buffer, "params": (state.actor_params, state.critic_params, state.target_params),
                **groups, "other": (state.log_alpha, state.env_state, state.obs, state.key)}

    def policy_inputs(self, state: SACState):
        return {"params": state.actor_params, "masks": state.actor_masks}

    def policy_arrays(self, inputs, hp) -> PolicyArrays:
        """tanh of the Gaussian's mean, scaled into the action box."""
        center, half = (np.asarray(a, np.float32) for a in action_scale(self.env.action_space))
        layers = mlp_layers(inputs["params"]["params"], inputs["masks"]["params"], self.actor.module.activation)
        return PolicyArrays(self.env.obs_shape, layers, {"kind": "squash", "outputs": self.action_dim},
                            {"head_center": center, "head_half": half})

