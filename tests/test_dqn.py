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
    hps = pjs.stack_hparams([train.hparams(method=m) for m in methods])
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
    hp = train.hparams(gamma=0.5)
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
    td = np.sqrt(np.asarray(want))
    want_huber = np.where(td <= 1.0, 0.5 * td ** 2, td - 0.5)  # delta 1
    np.testing.assert_allclose(np.asarray(huber), want_huber, rtol=1e-5)


def test_weight_decay_is_on_hidden_kernels_only():
    """TF-Agents' classic-control Q-network: L2 (wd * sum w^2) on the hidden Dense kernels, none
    on biases or on the output layer (no kernel_regularizer there)."""
    config = {**LEARN, "total_steps": 1000, "eval_every": 1000}
    train = pjs.make_train(config)
    agent, hp = train.agent, train.hparams()
    params, _ = agent.q.init(jax.random.PRNGKey(0), hp.sparse())
    batch = {"obs": jax.random.normal(jax.random.PRNGKey(1), (8, 4)), "next_obs": jnp.zeros((8, 4)),
             "action": jnp.arange(8) % 2, "reward": jnp.ones(8), "terminated": jnp.zeros(8, bool)}
    grad = lambda wd: jax.grad(agent._loss)(params, params, batch, hp.replace(weight_decay=jnp.float32(wd)))  # noqa: E731
    diff = jax.tree.map(lambda a, b: np.asarray(a - b), grad(0.5), grad(0.0))["params"]
    for layer in ("layer_0", "layer_1"):
        np.testing.assert_allclose(diff[layer]["kernel"], 2 * 0.5 * np.asarray(params["params"][layer]["kernel"]),
                                   rtol=1e-4, atol=1e-6)
    for layer in ("layer_0", "layer_1", "layer_2"):
        np.testing.assert_allclose(diff[layer]["bias"], 0.0, atol=1e-6)
    np.testing.assert_allclose(diff["layer_2"]["kernel"], 0.0, atol=1e-6)
    # Dopamine's CNNs decay every kernel
    pixel = {**config, "env": "Breakout-MinAtar", "agent_config": {**config["agent_config"], "network": "minatar"}}
    assert pjs.make_train(pixel).agent.decay_output_layer


def test_q_network_init_is_the_originals():
    """rigl dqn_train_eval.build_network: hidden VarianceScaling(2, fan_in, truncated normal),
    output kernel RandomUniform(-0.03, 0.03), output bias Constant(-0.2); Adam eps 1e-7."""
    config = {**LEARN, "total_steps": 1000, "eval_every": 1000,
              "agent_config": {**LEARN["agent_config"], "hidden": [256, 256]}}
    train = pjs.make_train(config)
    hp = train.hparams()
    assert float(hp.adam_eps) == pytest.approx(1e-7)
    params, _ = train.agent.q.init(jax.random.PRNGKey(0), hp.sparse())
    p = params["params"]
    out = np.asarray(p["layer_2"]["kernel"])
    assert np.all(np.abs(out) <= 0.03) and np.abs(out).max() > 0.025
    assert out.std() == pytest.approx(0.03 / np.sqrt(3), rel=0.1)
    np.testing.assert_array_equal(np.asarray(p["layer_2"]["bias"]), np.float32(-0.2))
    np.testing.assert_array_equal(np.asarray(p["layer_0"]["bias"]), 0.0)
    hidden = np.asarray(p["layer_1"]["kernel"])
    assert hidden.std() == pytest.approx(np.sqrt(2.0 / 256), rel=0.05)  # truncated normal, var 2/fan_in
    assert np.abs(hidden).max() <= 2 * np.sqrt(2.0 / 256) / 0.87962566 + 1e-6


def test_set_mask_changes_at_the_first_train_step():
    """rigl's mask updater runs at train-step counter 0, before the first gradient is applied."""
    config = {**LEARN, "total_steps": 600, "eval_every": 600, "eval_episodes": 1,
              "hparams": {**LEARN["hparams"], "update_interval": 1000, "drop_fraction": 0.5}}
    train = pjs.make_train(config)
    hp = train.hparams(method="set")
    first = train.agent.schedule.first_train_iter  # the iteration of the first optimizer step
    state0 = train.agent.init(jax.random.PRNGKey(0), hp)
    run = jax.jit(lambda s, lo, hi: jax.lax.fori_loop(lo, hi, lambda t, s: train.agent.iteration(s, hp, t), s))
    before = run(state0, 0, first)
    after = run(before, first, first + 1)
    spec = train.agent.q.spec
    m0, m1 = (np.asarray(spec.kernel_leaves(s.masks)[1]) for s in (before, after))
    np.testing.assert_array_equal(m0, np.asarray(spec.kernel_leaves(state0.masks)[1]))
    nnz = int(m0.sum())
    assert int(m1.sum()) == nnz
    changed = int((m1 & ~m0).sum())
    assert 0.4 * nnz < changed <= nnz // 2  # floor(0.5 nnz) regrown at random, a few land back


def test_grad_snr_on_the_training_batch_every_snr_every_steps():
    config = {**LEARN, "total_steps": 1000, "eval_every": 1000, "eval_episodes": 1,
              "agent_config": {**LEARN["agent_config"], "grad_snr": True, "snr_every": 3}}
    train = pjs.make_train(config)
    agent = train.agent
    hp = train.hparams(method="rigl")
    state = agent.init(jax.random.PRNGKey(0), hp)
    first = agent.schedule.first_train_iter
    run = jax.jit(lambda s, lo, hi: jax.lax.fori_loop(lo, hi, lambda t, s: agent.iteration(s, hp, t), s))
    s = run(state, 0, first)
    assert np.all(np.isnan(np.asarray(s.snr)))
    s1 = run(s, first, first + 1)  # counter 0: measured
    s2 = run(s1, first + 1, first + 3)  # counters 1, 2: kept
    s3 = run(s2, first + 3, first + 4)  # counter 3: measured again
    np.testing.assert_array_equal(np.asarray(s1.snr), np.asarray(s2.snr))
    assert not np.array_equal(np.asarray(s2.snr), np.asarray(s3.snr))
    # recompute counter 0's value by hand: the batch the step drew, per-sample grads in numpy terms
    key, k_act, k_env, k_sample, k_mask = jax.random.split(s.key, 5)
    batch = agent.replay.sample(k_sample, s1.buffer, first + 1, agent.static.batch_size)
    params = sp.apply_masks(s.params, s.masks)
    grads = []
    for i in range(agent.static.batch_size):
        one = {k: v[i:i + 1] for k, v in batch.items()}
        g = jax.grad(lambda p: agent._td_loss(p, s.target_params, one, hp).mean())(params)
        grads.append([np.asarray(x, np.float64) for x in jax.tree.leaves(g)])
    masks = [np.asarray(m) for m in jax.tree.leaves(s.masks)]
    kernels = {i for i, (path, _) in enumerate(jax.tree_util.tree_leaves_with_path(s.masks))
               if "kernel" in jax.tree_util.keystr(path)}
    snr_all, snr_active, n_all, n_active = 0.0, 0.0, 0, 0
    for j, m in enumerate(masks):
        g = np.stack([gs[j] for gs in grads])
        snr = np.abs(g.mean(0)) / (g.std(0) + 1e-10)
        exists = np.ones_like(m) if j in kernels else m
        snr_all += snr[exists].sum()
        n_all += exists.sum()
        snr_active += snr[m].sum()
        n_active += m.sum()
    np.testing.assert_allclose(np.asarray(s1.snr), [snr_all / n_all, snr_active / n_active], rtol=2e-3)
