"""PPO learns with its default normalisation on (observations by TF-Agents' running normaliser,
rewards divided by their running std): CartPole-v1 dense and RigL, and continuous-action
Pendulum-v1. test_ppo.py learns CartPole with both normalisations off; these cover the path
PPO's own defaults take.

Every threshold below comes from returns measured with this file's code and configs over
several keys, with the same runs under a zero learning rate as the "learning broken" reference."""

import numpy as np

from conftest import train_runs


def _normalisers_were_used(state, total_steps):
    """Both running statistics counted every training sample (they start empty, count 1e-8, and
    do not move with normalize_obs: false / reward_normalization: none)."""
    np.testing.assert_array_equal(state.obs_stats.count, float(total_steps))
    np.testing.assert_array_equal(state.reward_stats.count, float(total_steps))


# 160 rollouts of 4 envs x 128 steps, 4 epochs of 4 minibatches (2560 updates); no normalisation
# keys: normalize_obs true and reward_normalization "rewards" are PPO's defaults
CARTPOLE = {
    "agent": "ppo", "env": "CartPole-v1", "total_steps": 81_920, "eval_every": 16_384, "eval_episodes": 8,
    "agent_config": {"hidden": [32, 32], "num_envs": 4, "rollout_steps": 128, "minibatch_size": 128,
                     "epochs": 4},
    "hparams": {"learning_rate": 1e-3, "ent_coef": 0.01, "sparsity": 0.9, "update_interval": 20, "end": 500},
}


def test_ppo_with_default_normalisation_learns_cartpole_dense_and_rigl():
    """Dense and RigL at 90% sparsity, one program: both end far above a random policy.

    Measured final returns (mean of 8 greedy episodes), keys 0..11: dense 185-500, RigL
    189-500, the pair's mean >= 255. Zero learning rate, same keys: 8.5-97, the pair's mean
    <= 61. A uniformly random policy: 20-23 (envs.evaluate, 64 episodes, 3 keys); PPO's
    untrained greedy policy (empty statistics): 9-159, hence the bound on the mean."""
    _, _, state, metrics = train_runs(CARTPOLE, [{"method": "dense"}, {"method": "rigl"}], seed=0)
    _normalisers_were_used(state, CARTPOLE["total_steps"])
    final = np.asarray(metrics["eval_return"])[:, -1]
    random_policy = 22.0
    assert np.all(final > 5 * random_policy), metrics["eval_return"]
    assert final.mean() > 150.0, metrics["eval_return"]
    np.testing.assert_allclose(metrics["actual_sparsity"][1, -1], 0.9, atol=0.01)  # RigL stayed sparse


# 320 rollouts of 16 envs x 64 steps, 10 epochs of 4 minibatches; gamma 0.9 (Pendulum's usual
# tuning: with 0.99 nothing learned in 400k steps); default normalisation as above
PENDULUM = {
    "agent": "ppo", "env": "Pendulum-v1", "total_steps": 327_680, "eval_every": 65_536, "eval_episodes": 16,
    "agent_config": {"hidden": [64, 64], "num_envs": 16, "rollout_steps": 64, "minibatch_size": 256,
                     "epochs": 10},
    "hparams": {"learning_rate": 1e-3, "gamma": 0.9},
}


def test_continuous_ppo_with_default_normalisation_learns_pendulum():
    """Two keys, one program: both end far above a random policy (200-step episodes).

    Measured final returns (mean of 16 greedy episodes), keys 0..8 (18 runs): -748 to -256, the
    pair's mean -601 to -314 (twice the steps did no better: -793 to -321). Zero learning rate,
    keys 0..5: -1436 to -1055, the pair's mean <= -1189. A uniformly random policy: -1210 to
    -1220 (envs.evaluate, 64 episodes, 3 keys); PPO's untrained greedy policy: -1391 to -1186."""
    _, _, state, metrics = train_runs(PENDULUM, [{"method": "dense"}, {"method": "dense"}], seed=0)
    _normalisers_were_used(state, PENDULUM["total_steps"])
    final = np.asarray(metrics["eval_return"])[:, -1]
    assert np.all(final > -900.0), metrics["eval_return"]
    assert final.mean() > -800.0, metrics["eval_return"]
