"""DQN: learns CartPole (dense and RigL 90%), TD targets, masks hold, the embeddable API."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp

LEARN = {
    "agent": "dqn", "env": "CartPole-v1", "total_steps": 20_000, "eval_every": 1000, "eval_episodes": 10,
    "agent_config": {"hidden": [64, 64], "batch_size": 64, "buffer_size": 10_000, "learning_starts": 500},
    "hparams": {"sparsity": 0.9, "update_interval": 500, "end": 15_000, "target_update_every": 100},
}


@pytest.fixture(scope="module")
def learned():
    """README's embeddable API as written: jax.jit(jax.vmap(train))(keys, hparams)."""
    train = pjs.make_train(LEARN)
    methods = ("dense", "dense", "rigl", "rigl")
    hps = pjs.stack_hparams([pjs.make_hparams(LEARN, method=m) for m in methods])
    keys = jax.random.split(jax.random.PRNGKey(0), len(methods))
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    return train, state, jax.device_get(metrics), hps


def test_dense_and_rigl_learn_cartpole(learned):
    _, _, metrics, _ = learned
    returns = np.asarray(metrics["eval_return"])
    assert returns.shape == (4, 20)
    final = returns[:, -2:].mean(axis=1)  # last 10% of evaluations
    random_policy = 22.0  # mean CartPole return of uniformly random actions
    assert np.all(final > 5 * random_policy), final
    assert np.all(returns[:, 0] < final)  # improved over training
    np.testing.assert_allclose(np.asarray(metrics["step"][0]), np.arange(1, 21) * 1000)


def test_rigl_keeps_exact_sparsity_and_masked_weights_zero(learned):
    train, state, metrics, hps = learned
    spec = train.agent.q.spec
    np.testing.assert_array_equal(np.asarray(metrics["actual_sparsity"])[:2], 0.0)
    k = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    for r in (2, 3):
        masks = jax.tree.map(lambda x: x[r], state.masks)
        counts = [int(m.sum()) for m in spec.kernel_leaves(masks)]
        assert counts == k.tolist()
        for tree in (state.params, state.target_params):
            for w, m in zip(jax.tree.leaves(jax.tree.map(lambda x: x[r], tree)), jax.tree.leaves(masks)):
                assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
    assert np.all(np.asarray(metrics["dormant_frac"]) >= 0) and np.all(np.asarray(metrics["dormant_frac"]) <= 1)


def test_td_target_bootstraps_on_truncation_not_termination():
    train = pjs.make_train({**LEARN, "total_steps": 1000, "eval_every": 1000})
    agent = train.agent
    hp = pjs.make_hparams(LEARN, gamma=0.5)
    params, _ = agent.q.init(jax.random.PRNGKey(0), hp.sparse())
    next_obs = jnp.ones((2, 4))
    q_next = agent.q.apply(params, next_obs).max(-1)
    q = agent.q.apply(params, jnp.zeros((2, 4)))
    batch = {"obs": jnp.zeros((2, 4)), "next_obs": next_obs, "action": jnp.array([0, 1]),
             "reward": jnp.array([1.0, 1.0]), "terminated": jnp.array([True, False])}
    td2 = agent._td_loss(params, params, batch, hp)
    want = jnp.square(q[jnp.arange(2), batch["action"]] - (1.0 + 0.5 * jnp.array([0.0, 1.0]) * q_next))
    np.testing.assert_allclose(np.asarray(td2), np.asarray(want), rtol=1e-6)
    huber = agent._td_loss(params, params, batch, hp.replace(huber=jnp.bool_(True)))
    assert np.all(np.asarray(huber) <= np.asarray(td2) + 1e-6)


def test_weight_decay_is_on_kernels_only():
    from purejaxsparse.agents.common import l2_penalty
    train = pjs.make_train({**LEARN, "total_steps": 1000, "eval_every": 1000})
    params, _ = train.agent.q.init(jax.random.PRNGKey(0), pjs.make_hparams(LEARN).sparse())
    params = jax.tree.map(lambda x: jnp.ones_like(x), params)
    n_kernel = train.agent.q.spec.num_kernel_params
    assert float(l2_penalty(train.agent.q.spec, params, 0.5)) == pytest.approx(0.5 * n_kernel)
