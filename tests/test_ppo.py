"""PPO: learns CartPole (dense and RigL 90%), masks hold in both networks, the Gaussian head's
log_std is never sparsified, GAE and the truncation bootstrap."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.agents.actor_critic import RunningStats
from purejaxsparse.config import build_agent
from purejaxsparse.fields import ConfigError

LEARN = {
    "agent": "ppo", "env": "CartPole-v1", "total_steps": 40_960, "eval_every": 8192, "eval_episodes": 8,
    "agent_config": {"hidden": [64, 64], "num_envs": 4, "rollout_steps": 128, "minibatch_size": 128,
                     "epochs": 4, "normalize_obs": False, "normalize_reward": False},
    "hparams": {"learning_rate": 2.5e-3, "ent_coef": 0.01, "sparsity": 0.9, "update_interval": 20,
                "end": 250},
}
RUNS = [{"method": "dense"}, {"method": "dense"}, {"method": "rigl"},
        {"method": "rigl", "actor_sparsity": 0.8, "critic_sparsity": 0.95}]


def test_dense_and_sparse_ppo_learn_cartpole_and_masks_hold():
    """One compiled program (the costly part) checked twice: learning, then the masks."""
    train = pjs.make_train(LEARN)
    hps = pjs.stack_hparams([pjs.make_hparams(LEARN, **r) for r in RUNS])
    keys = jax.random.split(jax.random.PRNGKey(0), len(RUNS))
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    metrics = jax.device_get(metrics)
    _check_learning(metrics)
    _check_masks(train.agent, state, metrics, hps)


def _check_learning(metrics):
    returns = np.asarray(metrics["eval_return"])
    assert returns.shape == (4, 5)
    random_policy = 22.0
    assert np.all(returns[:, -1] > 5 * random_policy), returns
    assert returns[:, -1].mean() > 300, returns
    np.testing.assert_array_equal(np.asarray(metrics["step"][0]), np.arange(1, 6) * 8192)


def _check_masks(agent, state, metrics, hps):
    """Masked weights are exactly zero; each network has its own sparsity."""
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


CONT = {"agent": "ppo", "env": {"name": "Pendulum-v1", "max_steps_in_episode": 3}, "total_steps": 64,
        "eval_every": 32, "eval_episodes": 2,
        "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 16, "minibatch_size": 8, "epochs": 1}}


def test_gaussian_log_std_is_never_sparsified():
    agent = build_agent(CONT)
    assert not agent.discrete
    spec = agent.actor.spec
    assert spec.kinds.count("other") == 1 and spec.num_layers == 3  # log_std: not a kernel or bias
    hp = pjs.make_hparams(CONT, method="rigl", sparsity=0.9)
    params, masks = agent.actor.init(jax.random.PRNGKey(0), hp.sparse())
    assert bool(jnp.all(masks["params"]["log_std"])) and params["params"]["log_std"].shape == (1,)
    mean, log_std = agent.actor.apply(params, jnp.zeros((5, 3)))
    assert mean.shape == log_std.shape == (5, 1)
    state = types.SimpleNamespace(actor_params=params, obs_stats=RunningStats.create((3,)))
    action = jax.jit(agent.eval_policy(state, hp))(None, jnp.zeros((5, 3)))
    assert action.shape == (5, 1) and bool(jnp.all(jnp.abs(action) <= 2.0))
    with pytest.raises(ConfigError, match="minibatch_size"):
        build_agent({**CONT, "agent_config": {**CONT["agent_config"], "minibatch_size": 7}})


def test_truncation_bootstraps_from_final_obs_value():
    agent = build_agent(CONT)
    hp = pjs.make_hparams(CONT, gamma=0.5)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), hp)
    _, _, _, traj, last_value = jax.jit(agent._rollout)(state, hp, jax.random.PRNGKey(1))
    trunc = np.asarray(traj["truncated"])
    assert trunc[2].all() and trunc[5].all() and not trunc[0].any()  # 3-step episodes
    value = lambda obs: np.asarray(agent._value(state.critic_params, state.obs_stats.normalize(obs)))  # noqa: E731
    np.testing.assert_allclose(np.asarray(traj["final_value"][0]), value(traj["obs"][1]), rtol=1e-5)
    assert not np.allclose(np.asarray(traj["final_value"][2]), value(traj["obs"][3]))  # next obs: a reset
    # GAE: a done step does not look past itself; its return is r (+ bootstrap added by the caller)
    r = jnp.ones((3, 1))
    v = jnp.zeros((3, 1))
    done = jnp.array([[False], [True], [False]])
    adv, target = agent._gae(hp, r, v, done, jnp.full((1,), 10.0))
    np.testing.assert_allclose(np.asarray(target[:, 0]), [1 + 0.5 * 0.95 * 1, 1, 1 + 0.5 * 10], rtol=1e-6)
