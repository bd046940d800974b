"""PPO's gradient SNR as rigl's log_snr: per-sample gradients of the per-sample loss over the
actor's and the critic's entries together, on the training minibatch."""

import jax
import jax.numpy as jnp
import numpy as np

import purejaxsparse as pjs
from purejaxsparse import sparse as sp

CONFIG = {
    "agent": "ppo", "env": "CartPole-v1", "total_steps": 256, "eval_every": 256, "eval_episodes": 2,
    "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 64, "minibatch_size": 32,
                     "epochs": 2, "grad_snr": True, "snr_every": 3},
    "hparams": {"sparsity": 0.8, "method": "rigl"},
}


def test_ppo_snr_matches_a_numpy_recomputation_over_both_networks():
    train = pjs.make_train(CONFIG)
    agent, hp = train.agent, train.hparams()
    state = agent.init(jax.random.PRNGKey(0), hp)
    assert np.all(np.isnan(np.asarray(state.snr)))
    key = jax.random.PRNGKey(1)
    mb = {"obs": jax.random.normal(key, (16, 4)), "action": jnp.arange(16) % 2,
          "logp": jnp.full(16, -0.7), "adv": jax.random.normal(jax.random.PRNGKey(2), (16,)),
          "target": jnp.linspace(-1, 1, 16)}
    hp_actor, hp_critic = agent.network_hparams(hp)
    got = np.asarray(agent._snr(state, mb, hp, hp_actor, hp_critic))
    # numpy: one gradient per sample, |mean| / (std + 1e-10) per entry
    norm = agent._normalize_advantages(mb, hp)
    grads = []
    for i in range(16):
        one = jax.tree.map(lambda v: v[i:i + 1], norm)
        g = jax.grad(lambda a, c: agent._sample_losses(a, c, one, hp).sum(), argnums=(0, 1))(
            state.actor_params, state.critic_params)
        grads.append([np.asarray(x, np.float64) for x in jax.tree.leaves(g)])
    masks = [np.asarray(m) for m in jax.tree.leaves((state.actor_masks, state.critic_masks))]
    paths = [jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_leaves_with_path((state.actor_masks, state.critic_masks))]
    total_all = total_act = n_all = n_act = 0.0
    for j, (m, path) in enumerate(zip(masks, paths)):
        g = np.stack([gs[j] for gs in grads])
        snr = np.abs(g.mean(0)) / (g.std(0) + 1e-10)
        exists = np.ones_like(m) if "kernel" in path else m
        total_all += snr[exists].sum()
        n_all += exists.sum()
        total_act += snr[m].sum()
        n_act += m.sum()
    assert n_all > n_act  # masked kernel entries count in the original's mean
    np.testing.assert_allclose(got, [total_all / n_all, total_act / n_act], rtol=2e-3)


def test_ppo_reports_snr_measured_during_training():
    train = pjs.make_train(CONFIG)
    hp = train.hparams()
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0), hp)
    snr = np.asarray([metrics["grad_snr"][-1], metrics["grad_snr_active"][-1]])
    assert np.all(np.isfinite(snr)) and np.all(snr > 0)
    np.testing.assert_array_equal(snr, np.asarray(state.snr))
