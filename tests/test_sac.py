"""SAC: learns Pendulum (dense and RigL 80%), masks hold in actor, critics and target critics,
target masks follow the online ones, continuous actions only, and a Brax (MJX) smoke run."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.config import build_agent
from purejaxsparse.hparams import ConfigError

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
    train = pjs.make_train(LEARN)
    hps = pjs.stack_hparams([pjs.make_hparams(LEARN, **r) for r in RUNS])
    keys = jax.random.split(jax.random.PRNGKey(0), len(RUNS))
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    metrics = jax.device_get(metrics)
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
    agent = build_agent(LEARN)  # Pendulum: torque in [-2, 2]
    hp = pjs.make_hparams(LEARN)
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
    hps = pjs.stack_hparams([pjs.make_hparams(config, method=m) for m in ("dense", "rigl")])
    # an MJX step takes minutes of XLA's CPU optimisations to compile; this run needs none
    fast_compile = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    run = jax.jit(jax.vmap(train), compiler_options=fast_compile)
    state, metrics = run(jax.random.split(jax.random.PRNGKey(0), 2), hps)
    assert metrics["eval_return"].shape == (2, 2) and np.isfinite(np.asarray(metrics["eval_return"])).all()
    assert abs(float(metrics["actual_sparsity"][1, -1]) - 0.5) < 0.05
    assert np.isfinite(np.asarray(jax.tree.leaves(state.actor_params)[0])).all()
