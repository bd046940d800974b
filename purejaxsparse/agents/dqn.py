"""DQN with a sparse Q-network (Graesser et al. 2022, classic-control settings by default).

Replay in device memory, epsilon-greedy (optionally decaying linearly after warm-up, as
Dopamine), hard target copies, squared TD loss (Huber as an option), Keras-style L2 weight decay
on kernels only, rewards optionally clipped to [-1, 1] for learning (Atari).

The MLP is the original's classic-control Q-network (rigl `dqn_train_eval.build_network`):
hidden kernels He truncated normal, output kernel U(-0.03, 0.03) and output bias -0.2, no
weight decay on the output layer; Adam epsilon 1e-7 (Keras' default). The CNNs follow
Dopamine (Glorot uniform, zero biases, every kernel decayed).

Gradient SNR (`agent_config.grad_snr`): as rigl's `log_snr`, every `snr_every` optimizer steps
(at counter 0, snr_every, ...) on that step's training batch, per-sample gradients of the TD
loss; `grad_snr` averages |mean|/std over every entry the original's network has (masked
kernel entries included: its masks act on dense variables), `grad_snr_active` over active
entries only (ours: what the sparse network can actually learn with). The latest value is
reported at each evaluation (NaN before the first). On a frame-stacking
pixel env (EnvPool Atari) the replay stores each frame once and rebuilds stacks when sampling
(`replay.sample_frames`); EnvPool's reset steps are never learned from. The Q-network's params are kept masked
(exact zeros) by the sparse optimizer (sparse/optimizer.py, an optax transform around Adam), the
loss is differentiated at the masked params (so RigL sees the dense gradient), gradients are
masked before Adam, and masks change on the sparse schedule. A time-limit end bootstraps from
the final observation; a termination does not.

ReDo (`redo_every` > 0, per run): after the optimizer step at counter k (k > 0, a multiple of
`redo_every`) and before that step's target copy, the units whose dormant score on
`dormant_batch` fresh replay states is <= `redo_tau` are recycled (sparse/redo.py).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from .. import envs

from .. import replay
from .. import sparse as sp
from ..fields import ConfigError, hfield
from ..nets import MLP, ImpalaResNet, MinAtarCNN, NatureCNN, scaled_all
from ..policy_arrays import PolicyArrays, mlp_layers
from .base import Agent, sparse_groups, width_field
from .common import SNR_METRICS, OffPolicySchedule, SparseNetwork, gradient_snrs, l2_penalty, network_metrics


@dataclasses.dataclass(frozen=True)
class DQNStatic:
    """Static DQN settings (they set shapes and loop lengths, so one value per sweep)."""

    network: str = dataclasses.field(default="mlp", metadata={"choices": ("mlp", "nature_cnn", "impala", "minatar")})
    hidden: tuple[int, ...] = (512, 512)
    width: float = width_field()
    num_envs: int = dataclasses.field(default=1, metadata={"min": 1})
    batch_size: int = dataclasses.field(default=128, metadata={"min": 1})
    buffer_size: int = dataclasses.field(default=100_000, metadata={"min": 1})
    learning_starts: int = dataclasses.field(default=1000, metadata={"min": 0})
    train_every: int = dataclasses.field(default=1, metadata={"min": 1})
    dormant_tau: float = dataclasses.field(default=0.025, metadata={"min": 0.0})
    dormant_batch: int = dataclasses.field(default=256, metadata={"min": 1})
    grad_snr: bool = False
    snr_every: int = dataclasses.field(default=5000, metadata={"min": 1})


@struct.dataclass
class DQNHParams(sp.SparseHParams):
    """Per-run (traced) DQN hyperparameters; the sparse ones come from sparse.SparseHParams."""

    learning_rate: jax.Array = hfield("float", 1e-3, "Adam step size", low=0.0, low_open=True)
    adam_eps: jax.Array = hfield("float", 1e-7, "Adam epsilon (Keras' default)", low=0.0, low_open=True)
    gamma: jax.Array = hfield("float", 0.99, "discount", low=0.0, high=1.0)
    epsilon: jax.Array = hfield("float", 0.01, "exploration epsilon after warm-up", low=0.0, high=1.0)
    eval_epsilon: jax.Array = hfield("float", 0.0, "epsilon of the evaluation policy", low=0.0, high=1.0)
    target_update_every: jax.Array = hfield("int", 100, "optimizer steps between hard target copies", low=1)
    weight_decay: jax.Array = hfield("float", 1e-6, "L2 coefficient on kernels", low=0.0)
    huber: jax.Array = hfield("bool", False, "Huber instead of squared TD loss")
    epsilon_decay_steps: jax.Array = hfield(
        "int", 0, "env steps after warm-up over which epsilon falls linearly from 1 (0: at once)", low=0)
    reward_clip: jax.Array = hfield("bool", False, "clip rewards to [-1, 1] for learning (Atari)")
    redo_every: jax.Array = hfield(
        "int", 0, "ReDo: recycle dormant units after every this many optimizer steps (0: off)", low=0)
    redo_tau: jax.Array = hfield("float", 0.1, "ReDo: units whose dormant score is <= this are recycled", low=0.0)


@struct.dataclass
class DQNState:
    params: dict
    target_params: dict
    opt_state: sp.SparseState   # the Q-network's masks, Adam state and optimizer-step count
    env_state: envs.EnvState
    obs: jax.Array
    buffer: dict
    key: jax.Array
    snr: jax.Array              # [2]: latest (grad_snr, grad_snr_active); NaN before the first

    @property
    def masks(self) -> dict:
        return sp.sparse_masks(self.opt_state)



REDO_STREAM = 0x5245444F
"""ReDo's key is fold_in(this step's mask-update key, REDO_STREAM): a stream of its own (mask
updates fold in small layer indices), so adding ReDo changes no other random draw."""


def exploration_epsilon(hp, env_steps, learning_starts: int):
    """Dopamine's linearly decaying epsilon: 1 during warm-up, then down to `hp.epsilon` over
    `hp.epsilon_decay_steps` env steps (at once when that is 0)."""
    decay = jnp.maximum(hp.epsilon_decay_steps, 1).astype(jnp.float32)
    left = (hp.epsilon_decay_steps + learning_starts - env_steps).astype(jnp.float32)
    decayed = hp.epsilon + jnp.clip((1.0 - hp.epsilon) * left / decay, 0.0, 1.0 - hp.epsilon)
    warm = env_steps < learning_starts
    return jnp.where(hp.epsilon_decay_steps > 0, decayed, jnp.where(warm, 1.0, hp.epsilon))


class DQN(Agent):
    name = "dqn"
    HParams = DQNHParams
    Static = DQNStatic
    # The paper's classic-control schedule: pruning from 20k to 75k, SET/RigL until 75k.
    method_defaults = {"prune": {"start": 20_000}}

    def __init__(self, env, static: DQNStatic, eval_env, total_steps, eval_every, eval_episodes):
        if not isinstance(env.action_space, envs.Discrete):
            raise ValueError(f"DQN needs discrete actions; {env.name} has continuous ones")
        super().__init__(env, static, eval_env, total_steps, eval_every, eval_episodes)
        n_actions = env.action_space.n
        width = static.width
        if static.network == "mlp":
            hidden = scaled_all(static.hidden, width)
            module, inits = MLP(hidden=hidden, out_dim=n_actions, out_bias=-0.2), {
                f"layer_{len(hidden)}/": sp.uniform_init(0.03), "": sp.HE_TRUNCATED_NORMAL}
        elif static.network == "nature_cnn":
            module, inits = NatureCNN(out_dim=n_actions, width=width), sp.GLOROT_UNIFORM
        elif static.network == "minatar":
            module, inits = MinAtarCNN(out_dim=n_actions, width=width), sp.GLOROT_UNIFORM
        else:
            module, inits = ImpalaResNet(out_dim=n_actions, width=width), sp.GLOROT_UNIFORM
        self.q = SparseNetwork.build(module, env.obs_shape, inits=inits)
        self.recyclable = sp.recyclable_layers(self.q.spec, module)
        self.decay_output_layer = static.network != "mlp"
        self.extra_metrics = SNR_METRICS if static.grad_snr else ()
        self.schedule = OffPolicySchedule.of(static.buffer_size, static.learning_starts, env.num_envs,
                                             static.train_every)
        stack = int(getattr(env, "frame_stack", 0))  # > 1: store frames once, rebuild stacks
        if stack > 1 and (self.schedule.capacity < stack + 2 or static.learning_starts < (stack + 1) * env.num_envs):
            raise ValueError(f"a {stack}-frame replay needs buffer_size >= {(stack + 2) * env.num_envs} and "
                             f"learning_starts >= {(stack + 1) * env.num_envs} (whole stacks and a next frame)")
        self.replay = (replay.FrameReplay(self.schedule.capacity, stack) if stack > 1
                       else replay.TransitionReplay(self.schedule.capacity, env.binary_obs, env.obs_shape))

    def networks(self):
        return {"q": self.q}

    # -- run --------------------------------------------------------------------------------
    def init(self, key, hp: DQNHParams) -> DQNState:
        k_net, k_env, key = jax.random.split(key, 3)
        params, masks = self.q.init(k_net, hp.sparse())
        env_state, obs = self.env.reset(k_env)
        buffer = self.replay.init(obs, jnp.zeros(self.env.num_envs, jnp.int32))
        opt_state = sp.with_masks(self._optimizer(hp).init(params), masks)
        return DQNState(params=params, target_params=params, opt_state=opt_state,
                        env_state=env_state, obs=obs, buffer=buffer, key=key,
                        snr=jnp.full(2, jnp.nan, jnp.float32))

    def _optimizer(self, hp) -> optax.GradientTransformationExtraArgs:
        return sp.sparse_adam(self.q.spec, hp.learning_rate, eps=hp.adam_eps)

    def resume_episodes(self, state: DQNState, key) -> DQNState:
        """New episodes after a restore (the engine calls this for envs it cannot checkpoint).
        The reset's step count 0 marks an episode start, so no replayed transition crosses it."""
        env_state, obs = self.env.reset(key)
        return state.replace(env_state=env_state, obs=obs)

    def _act(self, key, params, obs, epsilon):
        """Epsilon-greedy from one draw of random bits (the coin and the random action)."""
        q = self.q.apply(params, obs)
        bits = jax.random.bits(key, (q.shape[0], 2), jnp.uint32)
        explore = (bits[:, 0] >> 8).astype(jnp.float32) * 2.0 ** -24 < epsilon
        random = (bits[:, 1] % q.shape[-1]).astype(jnp.int32)
        return jnp.where(explore, random, jnp.argmax(q, axis=-1))

    def iteration(self, state: DQNState, hp, t):
        key, k_act, k_env, k_sample, k_mask = jax.random.split(state.key, 5)
        epsilon = exploration_epsilon(hp, t * self.env.num_envs, self.static.learning_starts)
        action = self._act(k_act, state.params, state.obs, epsilon)
        env_state, obs, reward, terminated, _, info = self.env.step(k_env, state.env_state, action)
        reward = jnp.where(hp.reward_clip, jnp.clip(reward, -1.0, 1.0), reward)
        buffer = self.replay.add(state.buffer, t, state.obs, action, reward, terminated, info,
                                 state.env_state.step == 0)
        state = state.replace(env_state=env_state, obs=obs, buffer=buffer, key=key)
        train_now, rounds = self.schedule.due(t)
        return jax.lax.cond(train_now, lambda s: self._train(s, hp, t, rounds, k_sample, k_mask),
                            lambda s: s, state)

    def _td_loss(self, params, target_params, batch, hp):
        q = self.q.apply(params, batch["obs"])
        q_taken = jnp.take_along_axis(q, batch["action"][..., None], axis=-1)[..., 0]
        q_next = self.q.apply(target_params, batch["next_obs"]).max(-1)
        target = batch["reward"] + hp.gamma * (1.0 - batch["terminated"]) * q_next
        td = q_taken - jax.lax.stop_gradient(target)
        return jnp.where(hp.huber, optax.huber_loss(td, delta=1.0), jnp.square(td))

    def _loss(self, params, target_params, batch, hp):
        """Mean (or sample-weighted) TD loss plus L2 on the kernels the original decays."""
        td = self._td_loss(params, target_params, batch, hp)
        if "weight" in batch:
            td = jnp.sum(td * batch["weight"]) / jnp.maximum(jnp.sum(batch["weight"]), 1.0)
        else:
            td = td.mean()
        return td + l2_penalty(self.q.spec, params, hp.weight_decay, self.decay_output_layer)

    def _train(self, state: DQNState, hp, t, rounds, k_sample, k_mask):
        """One optimizer step. rounds: optimizer steps done, as the unbatched iteration counter
        gives it (= the sparse optimizer's count), so that the SNR's schedule stays a real branch
        under vmap."""
        batch = self.replay.sample(k_sample, state.buffer, t + 1, self.static.batch_size)

        # params are masked (exact zeros): their gradient is the dense one RigL grows by
        grads = jax.grad(self._loss)(state.params, state.target_params, batch, hp)
        snr = state.snr
        if self.static.grad_snr:
            due = rounds % self.static.snr_every == 0
            snr = jax.lax.cond(due, lambda: self._snr(state, batch, hp), lambda: snr)
        updates, opt_state = self._optimizer(hp).update(grads, state.opt_state, state.params,
                                                        key=k_mask, hparams=hp.sparse())
        params = optax.apply_updates(state.params, updates)
        params, opt_state = self._maybe_recycle(params, opt_state, state.buffer, hp, t, rounds, k_mask)
        copy = sp.sparse_count(opt_state) % hp.target_update_every == 0
        target = jax.tree.map(lambda p, q: jnp.where(copy, p, q), params, state.target_params)
        return state.replace(params=params, opt_state=opt_state, target_params=target, snr=snr)

    def _maybe_recycle(self, params, opt_state, buffer, hp, t, rounds, key):
        """ReDo (sparse/redo.py) after the update at counter `rounds`, before the target copy, as
        Dopamine's RecycledDQNAgent; under vmap it runs only when some run recycles."""
        due = sp.is_recycle_step(rounds, hp.redo_every)
        return sp.cond_any(due, self._recycle, lambda ops: ops[:2], (params, opt_state, buffer, hp, t, key))

    def _recycle(self, ops):
        """Recycle the dormant units, scored on `dormant_batch` fresh replay states."""
        params, opt_state, buffer, hp, t, key = ops
        k_states, k_init = jax.random.split(jax.random.fold_in(key, REDO_STREAM))
        states = self.replay.sample(k_states, buffer, t + 1, self.static.dormant_batch)["obs"]
        sparse_hp = hp.sparse()
        dead = sp.dormant_units(self.q.activations(params, states), hp.redo_tau,
                                sp.hidden_unit_masks(self.q.spec, sparse_hp))
        params, inner = sp.recycle_dormant(k_init, self.q.spec, sparse_hp, params, opt_state.masks,
                                           opt_state.inner_state, dead, self.recyclable)
        return params, opt_state._replace(inner_state=inner)

    def _snr(self, state: DQNState, batch, hp):
        """[grad_snr, grad_snr_active] of the per-sample TD-loss gradients on `batch`."""
        samples = {k: v for k, v in batch.items() if k != "weight"}
        one = lambda p, b: self._td_loss(p, state.target_params, jax.tree.map(lambda x: x[None], b), hp)[0]  # noqa: E731
        exists = sp.existing_entries(self.q.spec, hp.sparse(), state.masks)
        return gradient_snrs(one, state.params, samples, exists, state.masks, batch.get("weight"))

    def eval_policy(self, state: DQNState, hp):
        return lambda k, obs: self._act(k, state.params, obs, hp.eval_epsilon)

    def evaluate(self, state: DQNState, hp, key, t) -> dict:
        k_eval, k_states = jax.random.split(key)
        returns = self.evaluation_returns(state, hp, k_eval)
        states = self.replay.sample(k_states, state.buffer, t, self.static.dormant_batch)["obs"]
        metrics = {"eval_return": returns.mean(),
                   **network_metrics([(self.q, state.params, state.masks, hp.sparse(), states)],
                                     self.static.dormant_tau)}
        if self.static.grad_snr:
            metrics.update(zip(SNR_METRICS, state.snr))
        return metrics

    def final_active_params(self, hp) -> jax.Array:
        return sp.final_active_params(self.q.spec, hp.sparse())

    def sparse_networks(self, hp):
        return [("q", self.q, hp.sparse())]

    def optimizer_steps(self) -> tuple[int, str]:
        s = self.static
        return self.schedule.rounds(self.total_steps // self.env.num_envs), (
            f"one every {s.train_every * self.env.num_envs} env step(s) from env step "
            f"{max(s.learning_starts, 1):,} on (learning_starts)")

    def state_groups(self, state: DQNState) -> dict:
        return {"replay": state.buffer, "params": (state.params, state.target_params),
                **sparse_groups(state.opt_state), "other": (state.env_state, state.obs, state.key, state.snr)}

    def policy_inputs(self, state: DQNState):
        return {"params": state.params, "masks": state.masks}

    def policy_arrays(self, inputs, hp) -> PolicyArrays:
        """Greedy in Q (eval_epsilon is not exported)."""
        if self.static.network != "mlp":
            raise ConfigError(f"export: only MLP policies export; this sweep's Q-network is "
                              f"agent_config.network: {self.static.network}")
        layers = mlp_layers(inputs["params"]["params"], inputs["masks"]["params"], self.q.module.activation)
        return PolicyArrays(self.env.obs_shape, layers, {"kind": "argmax"})
