"""PPO against the original (rigl/rl/tfagents/ppo_train_eval.py on TF-Agents' PPOClipAgent):
networks and their init, the std and the squashed mean, one joint gradient clip, reward and
observation normalisation, the loss, episode ends, the per-method gin settings; and that sparse
PPO's masks hold through training (that PPO learns: test_ppo_learning.py)."""

import functools
import json
import re
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.config import build_agent, load_config, plan_sweep
from purejaxsparse.fields import ConfigError
from purejaxsparse.nets.gaussian import GaussianMLP

from conftest import train_runs

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {  # 16 rollouts x 4 epochs x 4 minibatches: 256 updates, past RigL's end (250)
    "agent": "ppo", "env": "CartPole-v1", "total_steps": 8192, "eval_every": 4096, "eval_episodes": 2,
    "agent_config": {"hidden": [64, 64], "num_envs": 4, "rollout_steps": 128, "minibatch_size": 128,
                     "epochs": 4, "normalize_obs": False, "reward_normalization": "none"},
    "hparams": {"learning_rate": 2.5e-3, "ent_coef": 0.01, "sparsity": 0.9, "update_interval": 20,
                "end": 250},
}
RUNS = [{"method": "dense"}, {"method": "dense"}, {"method": "rigl"},
        {"method": "rigl", "actor_sparsity": 0.8, "critic_sparsity": 0.95}]


def test_dense_and_sparse_ppo_masks_hold():
    """Masked weights are exactly zero after every RigL update; each network has its own sparsity."""
    train, hps, state, metrics = train_runs(TRAIN, RUNS)
    agent = train.agent
    np.testing.assert_array_equal(np.asarray(metrics["step"][0]), [4096, 8192])
    targets = {2: (0.9, 0.9), 3: (0.8, 0.95)}
    for r, (s_actor, s_critic) in targets.items():
        for net, params, masks, s in ((agent.actor, state.actor_params, state.actor_masks, s_actor),
                                      (agent.critic, state.critic_params, state.critic_masks, s_critic)):
            masks = jax.tree.map(lambda x: x[r], masks)
            want = np.asarray(sp.active_counts(net.spec.shapes, sp.layer_sparsities(net.spec.shapes, s)))
            assert [int(m.sum()) for m in net.spec.kernel_leaves(masks)] == want.tolist()
            for w, m in zip(jax.tree.leaves(jax.tree.map(lambda x: x[r], params)), jax.tree.leaves(masks)):
                assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
        assert abs(metrics["actual_sparsity_actor"][r, -1] - s_actor) < 0.01
        assert abs(metrics["actual_sparsity_critic"][r, -1] - s_critic) < 0.01
    for k in ("actual_sparsity", "actual_sparsity_actor", "actual_sparsity_critic"):
        np.testing.assert_array_equal(metrics[k][:2], 0.0)
    total = metrics["active_params_actor"] + metrics["active_params_critic"]
    np.testing.assert_array_equal(metrics["active_params"], total)
    assert np.all((metrics["dormant_frac"] >= 0) & (metrics["dormant_frac"] <= 1))
    final = np.asarray(jax.jit(jax.vmap(agent.final_active_params))(hps))
    np.testing.assert_array_equal(final, metrics["active_params"][:, -1])
    # the mask schedules' clock: 16 rollouts x 4 epochs x 4 minibatches = 256 updates of each network
    assert agent.optimizer_steps()[0] == 256
    np.testing.assert_array_equal(np.asarray(state.actor_opt.count), 256)
    np.testing.assert_array_equal(np.asarray(state.critic_opt.count), 256)


# Pendulum: 3 observations, 1 action in [-2, 2]; 3-step episodes (a time limit)
CONT = {"agent": "ppo", "env": {"name": "Pendulum-v1", "max_steps_in_episode": 3}, "total_steps": 64,
        "eval_every": 32, "eval_episodes": 2,
        "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 16, "minibatch_size": 8, "epochs": 1}}


def _with(config, **agent_config):
    return {**config, "agent_config": {**config["agent_config"], **agent_config}}


@functools.lru_cache(maxsize=None)
def _compiled(config_json: str):
    """(agent, jitted init, jitted iteration) of a config, compiled once for all tests."""
    agent = build_agent(json.loads(config_json))
    return agent, jax.jit(agent.init), jax.jit(agent.iteration)


def _init(config, key=0, **hparams):
    agent, init, _ = _compiled(json.dumps(config, sort_keys=True))
    hp = pjs.make_hparams(config, **hparams)
    return agent, hp, init(jax.random.PRNGKey(key), hp)


def _iterate(config, state, hp):
    return _compiled(json.dumps(config, sort_keys=True))[2](state, hp, 0)


def _dense(params, name, prefix=""):
    p = params["params"]
    for k in prefix.split("/") if prefix else ():
        p = p[k]
    return np.asarray(p[name]["kernel"]), np.asarray(p[name]["bias"])


def test_std_starts_at_0_35_state_independent_and_is_never_sparsified():
    agent, hp, state = _init(CONT, method="rigl", sparsity=0.9)
    bias = np.log(np.exp(0.35) - 1)  # sparse_ppo_actor_network.py:89
    np.testing.assert_allclose(np.asarray(state.actor_params["params"]["std_bias"]), [bias], rtol=1e-6)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    (_, std_a), (_, std_b) = agent.actor.apply(state.actor_params, x), agent.actor.apply(state.actor_params, 9 * x)
    np.testing.assert_allclose(np.asarray(std_a), np.log1p(np.exp(bias)) * np.ones((5, 1)), rtol=1e-6)  # 0.35
    np.testing.assert_array_equal(np.asarray(std_a), np.asarray(std_b))
    spec = agent.actor.spec
    assert spec.kinds.count("other") == 1 and spec.num_layers == 3  # std_bias: not a kernel or bias
    assert bool(jnp.all(state.actor_masks["params"]["std_bias"]))
    with pytest.raises(ConfigError, match="minibatch_size"):
        build_agent(_with(CONT, minibatch_size=7))


def test_mean_is_tanh_squashed_into_the_action_bounds():
    low, high = np.array([0.0, -1.0], np.float32), np.array([1.0, 3.0], np.float32)
    net = GaussianMLP(hidden=(4,), out_dim=2, low=tuple(low), high=tuple(high))
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    params = net.init(jax.random.PRNGKey(0), x)
    w0, b0 = _dense(params, "layer_0", "mean")
    w1, b1 = _dense(params, "layer_1", "mean")
    raw = np.tanh(x @ w0 + b0) @ w1 + b1
    mean, _ = net.apply(params, x)
    np.testing.assert_allclose(np.asarray(mean), (high + low) / 2 + (high - low) / 2 * np.tanh(raw), rtol=1e-5)
    for sign in (1.0, -1.0):  # a huge pre-activation reaches each bound exactly
        p = jax.tree.map(lambda a: a, params)
        p["params"]["mean"]["layer_1"]["bias"] = jnp.array([1e4, -1e4]) * sign
        mean, _ = net.apply(p, x)
        want = np.where(np.array([sign, -sign]) > 0, high, low)
        np.testing.assert_array_equal(np.asarray(mean), np.broadcast_to(want, (6, 2)))
    agent, hp, state = _init(CONT)  # the agent squashes into Pendulum's [-2, 2]; eval takes the mean
    obs_stats = state.obs_stats.replace(var=jnp.ones(3))
    policy = jax.jit(agent.eval_policy(types.SimpleNamespace(actor_params=state.actor_params,
                                                             obs_stats=obs_stats), hp))
    action = policy(None, jnp.asarray(x))
    assert action.shape == (6, 1) and bool(jnp.all(jnp.abs(action) < 2.0))


def test_critic_is_relu_and_actor_tanh():
    agent, hp, state = _init(CONT)
    x = 3 * np.random.default_rng(2).normal(size=(32, 3)).astype(np.float32)
    pre = x @ _dense(state.critic_params, "layer_0")[0] + _dense(state.critic_params, "layer_0")[1]
    h = np.asarray(agent.critic.activations(state.critic_params, x)[0])
    assert (pre < 0).any() and (pre > 0).any()
    np.testing.assert_array_equal(h[pre < 0], 0.0)  # value_network's default activation: relu
    np.testing.assert_allclose(h[pre > 0], pre[pre > 0], rtol=1e-5)
    w, b = _dense(state.actor_params, "layer_0", "mean")
    np.testing.assert_allclose(np.asarray(agent.actor.activations(state.actor_params, x)[0]), np.tanh(x @ w + b),
                               rtol=1e-5, atol=1e-6)


def _orthonormal(w):
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return np.allclose(gram, np.eye(len(gram)), atol=1e-5)


@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_initialisers_are_the_originals(env):
    """Hidden kernels orthogonal (actor and critic), policy output VarianceScaling(0.1), value
    output U(-0.03, 0.03), zero biases; sparse-from-scratch runs keep the sparsity-aware init."""
    config = _with({**CONT, "env": env}, hidden=[64, 64])
    states = [_init(config, key=k)[2] for k in range(4)]
    agent = _compiled(json.dumps(config, sort_keys=True))[0]
    prefix = "" if agent.discrete else "mean"
    for state in states:
        for params, pre in ((state.actor_params, prefix), (state.critic_params, "")):
            for name in ("layer_0", "layer_1"):
                w, b = _dense(params, name, pre)
                assert _orthonormal(w), name
                np.testing.assert_array_equal(b, 0.0)
    out = np.concatenate([_dense(state.actor_params, "layer_2", prefix)[0].ravel() for state in states])
    std = np.sqrt(0.1 / 64)  # truncated normal to 2 std, rescaled to this std
    assert np.abs(out).max() <= 2 * std / 0.8796 + 1e-7 and abs(out.std() / std - 1) < 0.2
    value = np.concatenate([_dense(state.critic_params, "layer_2")[0].ravel() for state in states])
    assert np.abs(value).max() <= 0.03 and np.abs(value).max() > 0.029 and abs(value.mean()) < 0.005
    for method, orthogonal in (("prune", True), ("static", False)):
        state = _init(config, method=method, sparsity=0.5)[2]
        assert _orthonormal(_dense(state.critic_params, "layer_1")[0]) == orthogonal, method


def test_vmapped_init_draws_one_orthogonal_kernel_at_a_time():
    """A sweep's init (vmap over runs) runs one unbatched QR per run and kernel: jaxlib 0.10's
    batched CPU QR waits on XLA's thread pool for its own parts and can hang the sweep. The
    kernels are those of initialising each run alone."""
    config = _with({**CONT, "env": "CartPole-v1"}, hidden=[16, 16])
    agent = _compiled(json.dumps(config, sort_keys=True))[0]
    hp = pjs.stack_hparams([pjs.make_hparams(config)] * 3)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    jaxpr = str(jax.make_jaxpr(jax.vmap(agent.init))(keys, hp))
    qr_outputs = re.findall(r"(\S+:f32\[[\d,]*\] \S+:f32\[[\d,]*\]) = qr\[", jaxpr)
    assert qr_outputs and all(out.count(",") == 2 for out in qr_outputs), qr_outputs  # two 2-D results
    batched = jax.jit(jax.vmap(agent.init))(keys, hp)
    for r in range(3):
        alone = jax.jit(agent.init)(keys[r], jax.tree.map(lambda x: x[r], hp))
        for a, b in zip(jax.tree.leaves(alone.actor_params), jax.tree.leaves(batched.actor_params)):
            np.testing.assert_array_equal(a, b[r])


def test_one_gradient_clip_over_actor_and_critic_together():
    """With Adam's eps and step size both 1e8 the first update is minus the (clipped) gradient,
    so the params' change shows the clip: global norm 0.5 over both networks together."""
    config = _with({**CONT, "env": "CartPole-v1"}, minibatch_size=32, normalize_obs=False,
                   reward_normalization="none")
    norms = {}
    for joint in (True, False):
        agent, hp, state = _init(_with(config, joint_grad_clip=joint), learning_rate=1e8, adam_eps=1e8,
                                 weight_decay=0.0, anneal_lr=False)
        new = _iterate(_with(config, joint_grad_clip=joint), state, hp)
        deltas = [np.asarray(a, np.float64) - np.asarray(b, np.float64)
                  for old, upd in ((state.actor_params, new.actor_params), (state.critic_params, new.critic_params))
                  for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(upd))]
        norms[joint] = np.sqrt(sum(np.sum(d * d) for d in deltas))
        actor_deltas = deltas[:len(jax.tree.leaves(state.actor_params))]
        assert np.sqrt(sum(np.sum(d * d) for d in actor_deltas)) > 1e-3  # both networks moved
    np.testing.assert_allclose(norms[True], 0.5, rtol=1e-4)
    assert norms[False] > 0.5 * 1.01  # per network: each up to 0.5


def test_rewards_divided_by_the_running_reward_std():
    """TF-Agents normalize_rewards: statistics of every raw reward so far (this rollout's
    included), reward / sqrt(var + 1e-3), not centred, clipped to +-10."""
    agent, hp, state = _init(CONT)
    rng = np.random.default_rng(4)
    stream = [5.0 + 3.0 * rng.normal(size=(64, 2)) for _ in range(3)]
    stream[2][4, 0] = 400.0  # beyond 10 std of all 384 rewards: clipped
    stats, seen, outs = state.reward_stats, [], []
    for chunk in stream:
        out, stats = agent._scale_rewards(stats, {"reward": jnp.asarray(chunk, jnp.float32)})
        seen.append(chunk)
        var = np.concatenate(seen).var()
        np.testing.assert_allclose(np.asarray(out), np.clip(chunk / np.sqrt(var + 1e-3), -10, 10), rtol=1e-4)
        outs.append(np.asarray(out))
    assert outs[2][4, 0] == 10.0 and np.array_equal(np.sign(outs[2]), np.sign(stream[2]))  # clip; no centring


def test_observations_normalised_as_tf_agents():
    """Empty statistics at first (x / sqrt(1e-3), clipped to +-5); the training batch is
    normalised with the statistics updated by its own rollout."""
    agent, hp, state = _init(CONT)
    o = np.array([[0.001, -0.2, 3.0]], np.float32)
    np.testing.assert_allclose(np.asarray(agent._normalize(state.obs_stats, o)),
                               np.clip(o / np.sqrt(1e-3), -5, 5), rtol=1e-5)
    _, k_roll, _ = jax.random.split(state.key, 3)
    traj = jax.jit(agent._rollout)(state, hp, k_roll)[3]
    new = _iterate(CONT, state, hp)
    obs = np.asarray(traj["obs"]).reshape(-1, 3)
    np.testing.assert_allclose(np.asarray(new.obs_stats.mean), obs.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new.obs_stats.var), obs.var(0), rtol=1e-4)
    want = np.clip((obs - obs.mean(0)) / np.sqrt(obs.var(0) + 1e-3), -5, 5)[agent.dormant_rows]
    np.testing.assert_allclose(np.asarray(new.recent_obs), want, rtol=1e-4, atol=1e-5)


def test_loss_weights_the_value_error_by_vf_coef_without_a_half():
    """TF-Agents value_estimation_loss: mean((R - V)^2) * value_pred_loss_coef (0.5); the
    clipped surrogate on advantages normalised per minibatch with sqrt(var + 1e-8)."""
    agent, hp, state = _init(CONT, ent_coef=0.0, weight_decay=0.0)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    action = rng.normal(size=(8, 1)).astype(np.float32)
    out = agent.actor.apply(state.actor_params, x)
    logp = np.asarray(agent._log_prob(out, jnp.asarray(action)))
    shift = np.linspace(-0.4, 0.4, 8).astype(np.float32)  # ratios inside and outside [0.8, 1.2]
    adv = rng.normal(size=8).astype(np.float32)
    target = rng.normal(size=8).astype(np.float32)
    mb = {"obs": x, "action": action, "logp": logp - shift, "adv": adv, "target": target}
    loss = float(agent._loss(state.actor_params, state.critic_params, mb, hp))
    h = x
    for name in ("layer_0", "layer_1"):
        w, b = _dense(state.critic_params, name)
        h = np.maximum(h @ w + b, 0.0)
    w, b = _dense(state.critic_params, "layer_2")
    value = (h @ w + b)[:, 0]
    a = (adv - adv.mean()) / np.sqrt(adv.var() + 1e-8)
    ratio = np.exp(shift)
    pg = np.mean(-np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a))
    np.testing.assert_allclose(loss, pg + 0.5 * np.mean((value - target) ** 2), rtol=1e-5)


def test_episode_ends_are_cut_and_a_time_limit_bootstraps_only_as_an_option():
    """The original cuts every episode end (discount 0 before a LAST step); with
    bootstrap_truncation a time-limit end bootstraps from the value of info["final_obs"]."""
    for bootstrap in (False, True):
        config = _with(CONT, reward_normalization="none", **({"bootstrap_truncation": True} if bootstrap else {}))
        agent, hp, state = _init(config, gamma=0.5)
        _, _, _, traj, last_value = jax.jit(agent._rollout)(state, hp, jax.random.PRNGKey(1))
        trunc = np.asarray(traj["truncated"])
        assert trunc[2].all() and trunc[5].all() and not trunc[0].any()  # 3-step episodes
        batch = jax.jit(agent._process)(state, hp, traj, last_value)[0]
        target = np.asarray(batch["target"]).reshape(16, 2)
        reward = np.asarray(traj["reward"])
        if not bootstrap:
            assert "final_value" not in traj
            np.testing.assert_allclose(target[2], reward[2], rtol=1e-6)
            continue
        value = lambda obs: np.asarray(agent._value(state.critic_params, agent._normalize(state.obs_stats, obs)))  # noqa: E731
        np.testing.assert_allclose(np.asarray(traj["final_value"][0]), value(traj["obs"][1]), rtol=1e-5)
        assert not np.allclose(np.asarray(traj["final_value"][2]), value(traj["obs"][3]))  # next obs: a reset
        np.testing.assert_allclose(target[2], reward[2] + 0.5 * np.asarray(traj["final_value"][2]), rtol=1e-5)
    # GAE: a done step does not look past itself
    adv, target = agent._gae(hp, jnp.ones((3, 1)), jnp.zeros((3, 1)), jnp.array([[False], [True], [False]]),
                             jnp.full((1,), 10.0))
    np.testing.assert_allclose(np.asarray(target[:, 0]), [1 + 0.5 * 0.95 * 1, 1, 1 + 0.5 * 10], rtol=1e-6)


# The original's gin values (rigl/rl/tfagents/configs/): dense weight decay 1e-6 (dense:13);
# static/SET/RigL share update_freq 250, init_drop_fraction 0.3, last_update_step 120000 and
# weight decay 1e-4, ERK with fixed_sparse_init (sparse:8-22); pruning from 32000 to 120000
# every 500, ERK, the dense weight decay (pruning:14-20, dense:13).
SPARSE = {"update_interval": 250, "drop_fraction": 0.3, "end": 120_000, "start": 0, "weight_decay": 1e-4,
          "distribution": "erk", "sparse_init": True}
GIN = {"dense": {"weight_decay": 1e-6}, "static": {"weight_decay": 1e-4, "distribution": "erk",
                                                   "sparse_init": True},
       "set": SPARSE, "rigl": SPARSE,
       "prune": {"start": 32_000, "end": 120_000, "update_interval": 500, "weight_decay": 1e-6,
                 "distribution": "erk"}}


@pytest.mark.parametrize("source", ["configs/ppo_mujoco.yaml", "agent defaults"])
def test_method_defaults_are_the_gin_values(source):
    if source == "agent defaults":
        config = {**CONT, "sweep": {"method": list(GIN), "sparsity": [0.9]},  # planned, not run: the
                  "total_steps": 1_024_000, "eval_every": 32_000}  # 128,000 updates reach the gin's 120,000
    else:
        config = {**load_config(ROOT / source), "env": "Pendulum-v1"}  # same settings, no Brax
    runs = plan_sweep(config).runs
    for method, want in GIN.items():
        run = next(r for r in runs if r["method"] == method)
        assert {k: run[k] for k in want} == pytest.approx(want), method
