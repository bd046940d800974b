"""SAC: learns Pendulum (dense and RigL 80%), masks hold in actor, critics and target critics,
target masks follow the online ones, continuous actions only, and a Brax (MJX) smoke run; the
original's (rigl/rl/tfagents + TF-Agents' SacAgent) std transform, TD target, critic loss,
target entropy and per-method gin settings, each against a hand computation in numpy."""

import math
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

from conftest import mlp_np, train_runs

LEARN = {
    "agent": "sac", "env": "Pendulum-v1", "total_steps": 7000, "eval_every": 1000, "eval_episodes": 5,
    "agent_config": {"hidden": [64, 64], "batch_size": 128, "buffer_size": 10_000, "learning_starts": 500},
    "hparams": {"learning_rate": 1e-3, "alpha_learning_rate": 1e-3, "sparsity": 0.8,
                "update_interval": 250, "end": 5000},
}
RUNS = [{"method": "dense"}, {"method": "dense"}, {"method": "rigl"},
        {"method": "rigl", "actor_sparsity": 0.9, "critic_sparsity": 0.8}]


def test_dense_and_sparse_sac_learn_pendulum_and_masks_hold():
    """One compiled program (the costly part) checked twice: learning, then the masks."""
    train, _, state, metrics = train_runs(LEARN, RUNS)
    _check_learning(metrics)
    _check_masks(train.agent, state, metrics)


def _check_learning(metrics):
    returns = np.asarray(metrics["eval_return"])
    assert returns.shape == (4, 7)
    final = returns[:, -2:].mean(1)
    assert np.all(final > -500), returns  # a random policy scores about -1200 to -1500
    assert np.all(returns[:, 0] < -900), returns  # the first evaluation: still near random


def _check_masks(agent, state, metrics):
    """Masked weights are exactly zero in actor, critics and target critics; the targets'
    nonzeros lie inside the online masks; each network has its own sparsity."""
    run = lambda tree, r: jax.tree.map(lambda x: x[r], tree)  # noqa: E731
    targets = {2: (0.8, 0.8), 3: (0.9, 0.8)}
    for r, (s_actor, s_critic) in targets.items():
        nets = [(agent.actor, state.actor_params, state.actor_masks, s_actor)]
        nets += [(agent.critic, p, m, s_critic) for p, m in zip(state.critic_params, state.critic_masks)]
        nets += [(agent.critic, p, m, s_critic) for p, m in zip(state.target_params, state.critic_masks)]
        for net, params, masks, s in nets:
            params, masks = run(params, r), run(masks, r)
            want = np.asarray(sp.active_counts(net.spec.shapes, sp.layer_sparsities(net.spec.shapes, s)))
            assert [int(m.sum()) for m in net.spec.kernel_leaves(masks)] == want.tolist()
            for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(masks)):
                assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
        # the target's nonzero pattern lies inside the online mask (RigL changed masks during training)
        for tp, m in zip(state.target_params, state.critic_masks):
            for w, mk in zip(jax.tree.leaves(run(tp, r)), jax.tree.leaves(run(m, r))):
                assert not np.any((np.asarray(w) != 0) & ~np.asarray(mk))
        assert abs(metrics["actual_sparsity_actor"][r, -1] - s_actor) < 0.01
        assert abs(metrics["actual_sparsity_critic"][r, -1] - s_critic) < 0.01
    # the two critics draw their own masks
    m1, m2 = (run(m, 2) for m in state.critic_masks)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(m1), jax.tree.leaves(m2)))
    np.testing.assert_array_equal(metrics["active_params"],
                                  metrics["active_params_actor"] + metrics["active_params_critic"])
    for k in ("actual_sparsity", "actual_sparsity_actor", "actual_sparsity_critic"):
        np.testing.assert_array_equal(metrics[k][:2], 0.0)


def test_sac_needs_continuous_actions_and_scales_to_the_box():
    with pytest.raises(ConfigError, match="SAC needs continuous actions"):
        build_agent({**LEARN, "env": "CartPole-v1"})
    train = pjs.make_train(LEARN)  # Pendulum: torque in [-2, 2]
    agent, hp = train.agent, train.hparams()
    params, _ = agent.actor.init(jax.random.PRNGKey(0), hp.sparse())
    state = types.SimpleNamespace(actor_params=jax.tree.map(lambda x: 100.0 * x, params))
    action = jax.jit(agent.eval_policy(state, hp))(None, jax.random.normal(jax.random.PRNGKey(1), (64, 3)))
    assert action.shape == (64, 1) and float(jnp.abs(action).max()) <= 2.0
    assert float(jnp.abs(action).max()) > 1.5  # saturated actions reach the Box's bound, not +-1


@pytest.mark.slow
def test_sac_halfcheetah_smoke():
    config = {"agent": "sac", "env": {"name": "halfcheetah", "episode_length": 5}, "total_steps": 16,
              "eval_every": 8, "eval_episodes": 1,
              "agent_config": {"hidden": [8, 8], "batch_size": 4, "buffer_size": 16, "learning_starts": 4},
              "hparams": {"sparsity": 0.5, "update_interval": 4, "end": 10}}
    train = pjs.make_train(config)
    hps = pjs.stack_hparams([train.hparams(method=m) for m in ("dense", "rigl")])
    # an MJX step takes minutes of XLA's CPU optimisations to compile; this run needs none
    fast_compile = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    run = jax.jit(jax.vmap(train), compiler_options=fast_compile)
    state, metrics = run(jax.random.split(jax.random.PRNGKey(0), 2), hps)
    assert metrics["eval_return"].shape == (2, 2) and np.isfinite(np.asarray(metrics["eval_return"])).all()
    assert abs(float(metrics["actual_sparsity"][1, -1]) - 0.5) < 0.05
    assert np.isfinite(np.asarray(jax.tree.leaves(state.actor_params)[0])).all()


# -- the original's formulas, by hand in numpy ------------------------------------------------

TINY = {"agent": "sac", "env": "Pendulum-v1", "total_steps": 100, "eval_every": 50, "eval_episodes": 1,
        "agent_config": {"hidden": [16, 16], "batch_size": 4, "buffer_size": 100, "learning_starts": 10}}


@pytest.fixture(scope="module")
def tiny():
    """(agent, default hparams, actor params, two critics' params) of a dense Pendulum SAC,
    initialised as in a run (one compiled init for all three networks)."""
    train = pjs.make_train(TINY)
    agent, hp = train.agent, train.hparams()

    @jax.jit
    def init(key):
        ka, k1, k2 = jax.random.split(key, 3)
        return (agent.actor.init(ka, hp.sparse())[0],
                agent.critic.init(k1, hp.sparse())[0], agent.critic.init(k2, hp.sparse())[0])

    actor, c1, c2 = init(jax.random.PRNGKey(0))
    return agent, hp, actor, (c1, c2)


def test_initial_policy_std_is_tf_agents_exp_of_a_glorot_output_layer(tiny):
    """TanhNormalProjectionNetwork: std = exp(raw) of a Glorot-uniform, zero-bias Dense layer,
    so the initial std is about 1 (the old tanh-squashed log std started at ~0.22)."""
    agent, hp, params, _ = tiny
    out = params["params"]["layer_2"]
    kernel, n_in, n_out = np.asarray(out["kernel"]), 16, 2
    assert np.abs(kernel).max() <= math.sqrt(6.0 / (n_in + n_out)) and np.all(np.asarray(out["bias"]) == 0)
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (512, 3)))
    std = np.exp(mlp_np(params, obs)[:, 1:])  # outputs: [means | stds], TF-Agents' tf.split
    _, log_std = jax.jit(agent._policy)(params, jnp.asarray(obs, jnp.float32), hp)
    np.testing.assert_allclose(np.exp(np.asarray(log_std)), std, rtol=1e-4)
    assert 0.5 < np.median(std) < 2.0


def test_td_target_scales_rewards_and_feeds_box_actions_to_the_critics(tiny):
    """TF-Agents' critic_loss target, by hand: 0.1 r + 0.99 (1 - done) (min Q'(s', a') -
    alpha log pi(a'|s')), a' = 2 tanh(u) in Pendulum's Box [-2, 2], u = mean + exp(raw) eps."""
    agent, hp, actor, targets = tiny
    ks = jax.random.split(jax.random.PRNGKey(3), 3)
    batch = {"next_obs": jax.random.normal(ks[0], (6, 3)),
             "reward": jax.random.uniform(ks[1], (6,), minval=-16.0),
             "terminated": jnp.array([False, True, False, False, True, False])}
    key, alpha = ks[2], 0.7
    got = np.asarray(jax.jit(agent._td_target)(key, hp, actor, targets, batch, alpha))

    out = mlp_np(actor, batch["next_obs"])
    mean, raw = out[:, :1], out[:, 1:]
    eps = np.asarray(jax.random.normal(key, (6, 1)), np.float64)  # the policy's reparameterisation noise
    u = mean + np.exp(raw) * eps
    a = 2.0 * np.tanh(u)  # env action: center 0, half range 2
    gauss = -0.5 * eps ** 2 - raw - 0.5 * np.log(2 * np.pi)  # N(u; mean, exp(raw)), u - mean = exp(raw) eps
    logp = np.sum(gauss - np.log(1 - np.tanh(u) ** 2) - np.log(2.0), -1)  # tanh, then x2 to the Box
    x = np.concatenate([np.asarray(batch["next_obs"]), a], -1)
    q = np.minimum(mlp_np(targets[0], x)[:, 0], mlp_np(targets[1], x)[:, 0])
    done = np.asarray(batch["terminated"], np.float64)
    want = 0.1 * np.asarray(batch["reward"]) + 0.99 * (1 - done) * (q - alpha * logp)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_critic_loss_is_half_of_mean_squared_td_plus_keras_l2_on_kernels(tiny):
    """0.5 (critic_loss_weight) x (batch mean of squared TD errors + wd * sum of squared kernel
    weights, the output layer's too; biases are not decayed)."""
    agent, _, _, (critic, _) = tiny
    hp = pjs.make_hparams(TINY, weight_decay=0.01)
    params = jax.tree.map(lambda x: x + 0.3 if x.ndim == 1 else x, critic)  # nonzero biases
    ks = jax.random.split(jax.random.PRNGKey(4), 3)
    batch = {"obs": jax.random.normal(ks[0], (5, 3)),
             "action": jax.random.uniform(ks[1], (5, 1), minval=-1.0)}
    target = jax.random.normal(ks[2], (5,))
    got = float(jax.jit(agent._critic_loss)(params, hp, batch, target))
    x = np.concatenate([np.asarray(batch["obs"]), 2.0 * np.asarray(batch["action"])], -1)
    td = mlp_np(params, x)[:, 0] - np.asarray(target)
    l2 = sum(np.sum(np.asarray(layer["kernel"], np.float64) ** 2) for layer in params["params"].values())
    assert math.isclose(got, 0.5 * (np.mean(td ** 2) + 0.01 * l2), rel_tol=1e-5)


def test_target_entropy_is_minus_half_the_action_dim():
    """TF-Agents' default target entropy -|A|/2 (hopper: |A| = 3 -> -1.5), resolved through the
    config loader: alpha loss = -log alpha * mean(log pi + target entropy)."""
    plan = plan_sweep({**TINY, "env": "hopper"})
    hp = jax.tree.map(lambda x: x[0], plan.hparams)
    logp = jnp.array([0.5, -2.0, 3.0, 1.0])
    assert plan.agent.action_dim == 3
    got = float(plan.agent._alpha_loss(jnp.float32(0.4), logp, hp))
    assert math.isclose(got, -0.4 * (np.mean([0.5, -2.0, 3.0, 1.0]) - 1.5), rel_tol=1e-6)


# -- per-method settings: the original's gin files ----------------------------------------------
# rigl/rl/tfagents/configs/: dense weight decay 1e-4 (sac_mujoco_dense_config.gin:7); static, SET,
# RigL share sac_mujoco_sparse_config.gin (weight decay 1e-6 :11, every 1000 :19, drop 0.5 :20,
# last update 800k :22, ERK :13, fixed sparse init :14); pruning 200k -> 800k every 1000
# (sac_mujoco_pruning_config.gin:21-23) with the dense weight decay.
GIN = {
    "dense": {"weight_decay": 1e-4},
    "static": {"weight_decay": 1e-6, "distribution": "erk", "sparse_init": True},
    "set": {"update_interval": 1000, "drop_fraction": 0.5, "start": 0, "end": 800_000,
            "weight_decay": 1e-6, "distribution": "erk", "sparse_init": True},
    "prune": {"start": 200_000, "end": 800_000, "update_interval": 1000, "weight_decay": 1e-4,
              "distribution": "erk"},
}
GIN["rigl"] = GIN["set"]
# sac_train_eval.py train_eval (lines 467-474) and TF-Agents' SacAgent defaults
COMMON = {"learning_rate": 3e-4, "alpha_learning_rate": 3e-4, "gamma": 0.99, "tau": 0.005,
          "reward_scale": 0.1, "target_entropy_scale": 0.5, "init_alpha": 1.0, "autotune": True,
          "adam_eps": 1e-7, "std_transform": "exp", "critic_unit_actions": False}


def _check_gin(runs, methods):
    seen = set()
    for run in runs:
        if run["method"] in methods:
            for k, v in {**COMMON, **GIN[run["method"]]}.items():
                assert run[k] == (pytest.approx(v) if isinstance(v, float) else v), (run["method"], k)
            seen.add(run["method"])
    assert seen == set(methods)


@pytest.mark.parametrize("source", ["agent", "sac_mujoco.yaml", "sac_actor_critic_split.yaml"])
def test_method_settings_resolve_to_the_gin_values(source):
    """Through the config loader: the agent's own defaults, and the shipped study configs."""
    if source == "agent":
        config = {**TINY, "sweep": {"method": ["dense", "static", "set", "rigl", "prune"]},  # planned, not run:
                  "total_steps": 1_000_000, "eval_every": 10_000}  # 999,991 updates reach the gin's 800,000
        methods = GIN
    else:
        config = load_config(Path(__file__).resolve().parents[1] / "configs" / source)
        methods = set(config["sweep"]["method"]) & set(GIN)
        assert config["agent_config"]["learning_starts"] == 1000  # initial_collect_steps, dense gin:4
    _check_gin(plan_sweep(config).runs, methods)
