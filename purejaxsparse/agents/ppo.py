"""PPO with a sparse actor and critic, as the original (Graesser et al. 2022: rigl/rl/tfagents/
ppo_train_eval.py on TF-Agents' PPOClipAgent and PPOLearner).

Networks, separate, each with its own masks and sparsity (actor_critic.py): actor 2x64 tanh with
orthogonal (gain 1) hidden kernels and VarianceScaling(0.1) logits (discrete) or mean; the mean
is tanh-squashed into the action bounds and the std, softplus(std_bias), is state-independent
and starts at 0.35 (nets/gaussian.py); sampled actions go to the env unclipped (the env clips).
Critic 2x64 ReLU, orthogonal hidden kernels, output U(-0.03, 0.03). Sparse-from-scratch layers
with `sparse_init` get the sparsity-aware init instead (the original's `fixed_sparse_init`).

An iteration collects num_envs x rollout_steps with observations normalised by the statistics
so far; updates the statistics with the rollout (observations, raw rewards); divides rewards by
the running reward std (not centred, clipped to +-10); GAE(lambda) with TD(lambda) targets,
every episode end cut (the original does not bootstrap a time limit); epochs of shuffled
minibatches on observations re-normalised with the updated statistics. Loss: clipped surrogate
on per-minibatch normalised advantages + vf_coef * mean((V - target)^2) (no 1/2) - ent_coef *
entropy + L2 on kernels; one global-norm clip over both networks' dense gradients, then Adam
with the learning rate decayed linearly to 0 (iteration index).

Options (agent_config) keep earlier behaviour; defaults are the original's: critic_activation
(tanh), squash_mean: false, std_init, reward_normalization: returns (by the std of the discounted
return) | none, bootstrap_truncation: true (from the value of info["final_obs"]),
joint_grad_clip: false (each network clipped on its own).
Mask schedules count minibatch updates: iteration t starts after t * epochs * num_minibatches.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from .. import envs

from .. import sparse as sp
from ..nets import MLP, scaled_all
from ..nets.gaussian import gaussian_actor
from .actor_critic import NETWORK_METRICS, actor_critic_metrics, gaussian_log_prob, network_hparams
from .normalizer import NORM_EPS, RunningStats, normalize, tf_normalizer
from .ppo_init import POLICY_INIT, mlp_inits, orthogonal_hidden, value_out_init
from ..policy_arrays import PolicyArrays, mlp_layers
from .base import Agent, sparse_groups
from .common import SNR_METRICS, SparseNetwork, gradient_snrs, l2_penalty

from .ppo_optimizers import clip_jointly, ppo_optimizers
from .ppo_settings import ADV_EPS, OBS_CLIP, REWARD_CLIP, PPOHParams, PPOStatic


@struct.dataclass
class PPOState:
    actor_params: dict
    critic_params: dict
    actor_opt: sp.SparseState   # each network's masks, Adam state and optimizer-step count
    critic_opt: sp.SparseState
    env_state: envs.EnvState
    obs: jax.Array
    obs_stats: RunningStats
    reward_stats: RunningStats  # of raw rewards, or of discounted returns (reward_normalization)
    returns: jax.Array          # running discounted return per env (reward_normalization: returns)
    recent_obs: jax.Array       # normalised states of the last rollout (dormant neurons)
    key: jax.Array
    snr: jax.Array              # [2]: latest (grad_snr, grad_snr_active); NaN before the first

    @property
    def actor_masks(self) -> dict:
        return sp.sparse_masks(self.actor_opt)

    @property
    def critic_masks(self) -> dict:
        return sp.sparse_masks(self.critic_opt)


def gaussian_entropy(log_std):
    return jnp.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


class PPO(Agent):
    name = "ppo"
    HParams = PPOHParams
    Static = PPOStatic
    # The original's gin files (rigl/rl/tfagents/configs/): ppo_mujoco_sparse_config.gin gives
    # static, SET and RigL one interval (250), drop fraction (0.3, cosine) and weight decay
    # (1e-4); ppo_mujoco_pruning_config.gin prunes from 32k to 120k updates every 500 with the
    # dense weight decay (1e-6).
    method_defaults = {
        "static": {"weight_decay": 1e-4},
        "set": {"update_interval": 250, "drop_fraction": 0.3, "weight_decay": 1e-4},
        "rigl": {"update_interval": 250, "drop_fraction": 0.3, "weight_decay": 1e-4},
        "prune": {"start": 32_000, "update_interval": 500},
    }

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
        self.extra_metrics = NETWORK_METRICS + (SNR_METRICS if static.grad_snr else ())
        in_dim, hidden = int(np.prod(env.obs_shape)), scaled_all(static.hidden, static.width)
        if self.discrete:
            actor = MLP(hidden=hidden, out_dim=space.n, activation=static.activation)
        else:
            actor = gaussian_actor(hidden, space, static.activation, static.squash_mean, static.std_init)
        self.actor = SparseNetwork.build(actor, env.obs_shape, inits=mlp_inits(in_dim, hidden, POLICY_INIT))
        critic = MLP(hidden=hidden, out_dim=1, activation=static.critic_activation)
        out_fan = hidden[-1] if hidden else in_dim
        self.critic = SparseNetwork.build(critic, env.obs_shape,
                                          inits=mlp_inits(in_dim, hidden, value_out_init(out_fan)))
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

    def network_hparams(self, hp):
        """(actor, critic) sparse hparams of one run, each at its network's sparsity."""
        return network_hparams(hp, self.actor.spec.num_kernel_params, self.critic.spec.num_kernel_params)

    # -- policy -----------------------------------------------------------------------------
    def _normalize(self, stats: RunningStats, obs):
        return normalize(stats, obs, OBS_CLIP) if self.static.normalize_obs else obs

    def _dist(self, params, obs):
        return self.actor.apply(params, obs)

    def _sample(self, key, params, obs):
        out = self._dist(params, obs)
        if self.discrete:
            action = jax.random.categorical(key, out, axis=-1)
        else:
            mean, std = out
            action = mean + std * jax.random.normal(key, mean.shape)
        return action, self._log_prob(out, action)

    def _log_prob(self, out, action):
        if self.discrete:
            logp = jax.nn.log_softmax(out, axis=-1)
            return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
        mean, std = out
        return gaussian_log_prob(action, mean, jnp.log(std))

    def _entropy(self, out):
        if self.discrete:
            logp = jax.nn.log_softmax(out, axis=-1)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
        return gaussian_entropy(jnp.log(out[1]))

    def _value(self, params, obs):
        return self.critic.apply(params, obs)[..., 0]

    # -- run --------------------------------------------------------------------------------
    def _init_network(self, key, net: SparseNetwork, hp: sp.SparseHParams):
        k_net, k_orth = jax.random.split(key)
        params, masks = net.init(k_net, hp)
        return orthogonal_hidden(k_orth, net, hp, params, masks, len(self.static.hidden)), masks

    def init(self, key, hp: PPOHParams) -> PPOState:
        k_actor, k_critic, k_env, key = jax.random.split(key, 4)
        hp_actor, hp_critic = self.network_hparams(hp)
        actor_params, actor_masks = self._init_network(k_actor, self.actor, hp_actor)
        critic_params, critic_masks = self._init_network(k_critic, self.critic, hp_critic)
        env_state, obs = self.env.reset(k_env)
        clip = not self.static.joint_grad_clip
        actor_tx, critic_tx = ppo_optimizers(self.actor, self.critic, hp, hp.learning_rate, clip)
        recent = jnp.zeros((len(self.dormant_rows), *self.env.obs_shape), jnp.float32)
        returns_mode = self.static.reward_normalization == "returns"
        return PPOState(
            actor_params=actor_params, critic_params=critic_params,
            actor_opt=sp.with_masks(actor_tx.init(actor_params), actor_masks),
            critic_opt=sp.with_masks(critic_tx.init(critic_params), critic_masks),
            env_state=env_state, obs=obs, obs_stats=tf_normalizer(self.env.obs_shape),
            reward_stats=RunningStats.create() if returns_mode else tf_normalizer(),
            returns=jnp.zeros(self.env.num_envs, jnp.float32), recent_obs=recent, key=key,
            snr=jnp.full(2, jnp.nan, jnp.float32))

    def _rollout(self, state: PPOState, hp, key):
        """Collect rollout_steps x num_envs transitions with the current policy and statistics."""
        stats = state.obs_stats

        def step(carry, k):
            env_state, obs, returns = carry
            k_act, k_env = jax.random.split(k)
            nobs = self._normalize(stats, obs)
            action, logp = self._sample(k_act, state.actor_params, nobs)
            value = self._value(state.critic_params, nobs)
            env_state, next_obs, reward, terminated, truncated, info = self.env.step(k_env, env_state, action)
            done = terminated | truncated
            returns = returns * hp.gamma + reward
            out = dict(obs=obs, action=action, logp=logp, value=value, reward=reward, done=done,
                       truncated=truncated, ret=returns)
            if self.static.bootstrap_truncation:
                out["final_value"] = self._value(state.critic_params, self._normalize(stats, info["final_obs"]))
            return (env_state, next_obs, jnp.where(done, 0.0, returns)), out

        keys = jax.random.split(key, self.static.rollout_steps)
        (env_state, obs, returns), traj = jax.lax.scan(step, (state.env_state, state.obs, state.returns),
                                                        keys)
        last_value = self._value(state.critic_params, self._normalize(stats, obs))
        return env_state, obs, returns, traj, last_value

    def _scale_rewards(self, stats: RunningStats, traj):
        """(rewards for GAE, statistics): updated with this rollout first, then applied."""
        mode = self.static.reward_normalization
        if mode == "rewards":
            stats = stats.update(traj["reward"])
            return normalize(stats, traj["reward"], REWARD_CLIP, center=False), stats
        if mode == "returns":
            stats = stats.update(traj["ret"])
            return normalize(stats, traj["reward"], REWARD_CLIP, center=False, eps=1e-8), stats
        return traj["reward"], stats

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

    def _process(self, state: PPOState, hp, traj, last_value):
        """(training batch, obs statistics, reward statistics) of one rollout."""
        obs_stats = state.obs_stats.update(traj["obs"]) if self.static.normalize_obs else state.obs_stats
        reward, reward_stats = self._scale_rewards(state.reward_stats, traj)
        if self.static.bootstrap_truncation:
            reward = reward + hp.gamma * traj["final_value"] * traj["truncated"]
        adv, target = self._gae(hp, reward, traj["value"], traj["done"], last_value)
        flat = lambda x: x.reshape(self.batch_size, *x.shape[2:])  # noqa: E731
        # the original normalises training observations with the statistics updated by this rollout
        batch = {"obs": flat(self._normalize(obs_stats, traj["obs"])), "action": flat(traj["action"]),
                 "logp": flat(traj["logp"]), "adv": flat(adv), "target": flat(target)}
        return batch, obs_stats, reward_stats

    def iteration(self, state: PPOState, hp, t):
        key, k_roll, k_train = jax.random.split(state.key, 3)
        env_state, obs, returns, traj, last_value = self._rollout(state, hp, k_roll)
        batch, obs_stats, reward_stats = self._process(state, hp, traj, last_value)
        state = state.replace(env_state=env_state, obs=obs, returns=returns, obs_stats=obs_stats,
                              reward_stats=reward_stats, recent_obs=batch["obs"][self.dormant_rows], key=key)
        return self._train(state, hp, t, batch, k_train)

    def _sample_losses(self, actor_params, critic_params, mb, hp):
        """Per-sample loss (clipped surrogate - ent_coef * entropy + vf_coef * squared value
        error) on a minibatch whose advantages are already normalised; the original's
        `total_loss_per_sample` without L2."""
        out = self._dist(actor_params, mb["obs"])
        ratio = jnp.exp(self._log_prob(out, mb["action"]) - mb["logp"])
        clipped = jnp.clip(ratio, 1.0 - hp.clip_eps, 1.0 + hp.clip_eps)
        pg = jnp.maximum(-mb["adv"] * ratio, -mb["adv"] * clipped)
        v_err = jnp.square(self._value(critic_params, mb["obs"]) - mb["target"])
        return pg - hp.ent_coef * self._entropy(out) + hp.vf_coef * v_err

    def _normalize_advantages(self, mb, hp):
        adv = mb["adv"]
        return {**mb, "adv": jnp.where(hp.norm_adv, (adv - adv.mean()) / jnp.sqrt(adv.var() + ADV_EPS), adv)}

    def _loss(self, actor_params, critic_params, mb, hp):
        """Minibatch loss: mean per-sample loss + L2 on both networks' kernels."""
        mb = self._normalize_advantages(mb, hp)
        return (self._sample_losses(actor_params, critic_params, mb, hp).mean()
                + l2_penalty(self.actor.spec, actor_params, hp.weight_decay)
                + l2_penalty(self.critic.spec, critic_params, hp.weight_decay))

    def _snr(self, s: PPOState, mb, hp, hp_actor, hp_critic):
        """[grad_snr, grad_snr_active] of per-sample loss gradients over actor and critic."""
        one = lambda p, x: self._sample_losses(*p, jax.tree.map(lambda v: v[None], x), hp)[0]  # noqa: E731
        exists = (sp.existing_entries(self.actor.spec, hp_actor, s.actor_masks),
                  sp.existing_entries(self.critic.spec, hp_critic, s.critic_masks))
        return gradient_snrs(one, (s.actor_params, s.critic_params), self._normalize_advantages(mb, hp),
                             exists, (s.actor_masks, s.critic_masks))

    def _train(self, state: PPOState, hp, t, batch, key):
        hp_actor, hp_critic = self.network_hparams(hp)
        frac = jnp.maximum(1.0 - jnp.asarray(t, jnp.float32) / self.num_iterations, 0.0)
        joint = self.static.joint_grad_clip
        learning_rate = jnp.where(hp.anneal_lr, hp.learning_rate * frac, hp.learning_rate)
        actor_tx, critic_tx = ppo_optimizers(self.actor, self.critic, hp, learning_rate, not joint)
        base = t * self.updates_per_iteration
        nmb, mbs = self.num_minibatches, self.static.minibatch_size

        def minibatch(carry, xs):
            s, key = carry
            mb, step = xs
            key, k_actor, k_critic = jax.random.split(key, 3)
            # params are masked (exact zeros): their gradients are the dense ones RigL grows by
            grads = jax.grad(self._loss, argnums=(0, 1))(s.actor_params, s.critic_params, mb, hp)
            if self.static.grad_snr:
                due = (step - 1) % self.static.snr_every == 0
                s = s.replace(snr=jax.lax.cond(due, lambda: self._snr(s, mb, hp, hp_actor, hp_critic),
                                               lambda: s.snr))
            # the original clips the dense gradients of both networks as one list (RigL's
            # gradient ranking within a layer does not change under this common scale)
            g_actor, g_critic = clip_jointly(grads, hp.max_grad_norm) if joint else grads
            u_actor, a_opt = actor_tx.update(g_actor, s.actor_opt, s.actor_params, key=k_actor, hparams=hp_actor)
            u_critic, c_opt = critic_tx.update(g_critic, s.critic_opt, s.critic_params, key=k_critic,
                                               hparams=hp_critic)
            s = s.replace(actor_params=optax.apply_updates(s.actor_params, u_actor), actor_opt=a_opt,
                          critic_params=optax.apply_updates(s.critic_params, u_critic), critic_opt=c_opt)
            return (s, key), None

        def epoch(carry, e):
            s, key = carry
            key, k_perm = jax.random.split(key)
            perm = jax.random.permutation(k_perm, self.batch_size)
            shuffled = jax.tree.map(lambda x: x[perm].reshape(nmb, mbs, *x.shape[1:]), batch)
            steps = base + e * nmb + jnp.arange(nmb, dtype=jnp.int32) + 1
            return jax.lax.scan(minibatch, (s, key), (shuffled, steps))[0], None

        (state, _), _ = jax.lax.scan(epoch, (state, key), jnp.arange(self.static.epochs, dtype=jnp.int32))
        return state

    # -- evaluation -------------------------------------------------------------------------
    def eval_policy(self, state: PPOState, hp):
        """The original's greedy policy: argmax, or the (squashed) mean."""
        def policy(key, obs):
            out = self._dist(state.actor_params, self._normalize(state.obs_stats, obs))
            return jnp.argmax(out, axis=-1) if self.discrete else out[0]
        return policy

    def evaluate(self, state: PPOState, hp, key, t) -> dict:
        returns = self.evaluation_returns(state, hp, key)
        hp_actor, hp_critic = self.network_hparams(hp)
        states = state.recent_obs
        metrics = actor_critic_metrics(
            [(self.actor, state.actor_params, state.actor_masks, hp_actor, states)],
            [(self.critic, state.critic_params, state.critic_masks, hp_critic, states)],
            self.static.dormant_tau)
        if self.static.grad_snr:
            metrics.update(zip(SNR_METRICS, state.snr))
        return {"eval_return": returns.mean(), **metrics}

    def final_active_params(self, hp) -> jax.Array:
        hp_actor, hp_critic = self.network_hparams(hp)
        return (sp.final_active_params(self.actor.spec, hp_actor)
                + sp.final_active_params(self.critic.spec, hp_critic))

    def sparse_networks(self, hp):
        hp_actor, hp_critic = self.network_hparams(hp)
        return [("actor", self.actor, hp_actor), ("critic", self.critic, hp_critic)]

    def optimizer_steps(self) -> tuple[int, str]:
        return (self.total_steps // self.batch_size) * self.updates_per_iteration, (
            f"{self.static.epochs} epochs x {self.num_minibatches} minibatches every "
            f"{self.batch_size:,} env steps")

    def state_groups(self, state: PPOState) -> dict:
        return {"replay": (), "params": (state.actor_params, state.critic_params),
                **sparse_groups(state.actor_opt, state.critic_opt),
                "other": (state.env_state, state.obs, state.obs_stats, state.reward_stats, state.returns,
                          state.recent_obs, state.key, state.snr)}

    def policy_inputs(self, state: PPOState):
        return {"params": state.actor_params, "masks": state.actor_masks, "obs_stats": state.obs_stats}

    def policy_arrays(self, inputs, hp) -> PolicyArrays:
        """eval_policy as arrays: observations normalised as `_normalize` does (normalize_obs),
        then argmax of the logits (discrete) or the mean, tanh-squashed into the action box as
        nets/gaussian.py's GaussianMLP does (squash_mean) or unbounded."""
        module, params, masks = self.actor.module, inputs["params"]["params"], inputs["masks"]["params"]
        norm = None
        if self.static.normalize_obs:
            stats = inputs["obs_stats"]
            norm = {"mean": np.asarray(stats.mean), "var": np.asarray(stats.var), "eps": NORM_EPS, "clip": OBS_CLIP}
        if self.discrete:
            return PolicyArrays(self.env.obs_shape, mlp_layers(params, masks, module.activation),
                                {"kind": "argmax"}, normalize=norm)
        layers = mlp_layers(params["mean"], masks["mean"], module.activation)
        if module.low is None:
            return PolicyArrays(self.env.obs_shape, layers, {"kind": "identity", "outputs": module.out_dim},
                                normalize=norm)
        low, high = np.asarray(module.low, np.float32), np.asarray(module.high, np.float32)
        return PolicyArrays(self.env.obs_shape, layers, {"kind": "squash", "outputs": module.out_dim},
                            {"head_center": (high + low) / 2.0, "head_half": (high - low) / 2.0}, norm)
