"""Actor-critic sweeps killed after their first chunk resume to exactly the uninterrupted run:
results.csv byte for byte and every leaf of the final checkpointed state (SAC's log alpha and
its Adam state; PPO's running observation/reward statistics)."""

import jax
import numpy as np
import pytest

from conftest import checkpointed_state
from purejaxsparse import sweep
from purejaxsparse.store import SweepCheckpoints
from purejaxsparse.config import load_config, plan_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

QUIET = {"progress": False, "log": lambda *_: None}


def interrupted_equals_uninterrupted(config, tmp_path):
    """Run `config` whole, and again stopped after one chunk then resumed from its saved config
    (a fresh plan, as `purejaxsparse resume` makes); assert both end with the same results.csv
    bytes and checkpointed state. Returns (plan, final state)."""
    plan = plan_sweep(config)
    assert plan.num_chunks >= 2
    full, cut = tmp_path / "full", tmp_path / "cut"
    sweep.run_sweep(plan, full, **QUIET)
    stats = sweep.run_sweep(plan, cut, max_chunks=1, **QUIET)
    assert stats.chunks_run == 1 and SweepCheckpoints(cut / "checkpoints").latest() == 1
    resumed = plan_sweep(load_config(cut / "config.yaml"))
    stats = sweep.run_sweep(resumed, cut, resume=True, **QUIET)
    assert stats.chunks_run == plan.num_chunks - 1
    assert (cut / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    want, got = checkpointed_state(full, plan), checkpointed_state(cut, resumed)
    assert jax.tree.structure(want) == jax.tree.structure(got)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got)):
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
    return plan, want


SAC = {
    "name": "tiny-sac", "agent": "sac", "env": {"name": "Pendulum-v1", "max_steps_in_episode": 50},
    "total_steps": 240, "eval_every": 80, "eval_episodes": 1, "chunk_evals": 1,
    "agent_config": {"hidden": [16, 16], "batch_size": 8, "buffer_size": 240, "learning_starts": 40},
    "hparams": {"sparsity": 0.8, "update_interval": 20, "end": 160, "alpha_learning_rate": 1e-2},
    "sweep": {"seed": 1, "method": ["dense", "rigl"]},
}


def test_sac_sweep_resumes_byte_identical(tmp_path):
    """3 chunks of 80 steps, cut after the first: the resumed sweep's rows and state (critics,
    targets, masks, replay, log alpha and its Adam moments) equal the uninterrupted ones."""
    plan, state = interrupted_equals_uninterrupted(SAC, tmp_path)
    assert np.all(state.log_alpha != 0.0)  # alpha was tuned (init_alpha 1): its resume is tested
    assert np.all(np.asarray(jax.tree.leaves(state.alpha_opt)[0]) > 0)  # Adam's step count


# PPO with its default normalisation (normalize_obs: true, reward_normalization: rewards):
# 6 iterations of 2 envs x 16 steps, 2 minibatch updates each, 3 chunks of 2 iterations
PPO = {
    "name": "tiny-ppo", "agent": "ppo", "env": {"name": "Pendulum-v1", "max_steps_in_episode": 50},
    "total_steps": 192, "eval_every": 64, "eval_episodes": 1, "chunk_evals": 1,
    "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 16, "minibatch_size": 16, "epochs": 1},
    "hparams": {"sparsity": 0.8, "update_interval": 2, "end": 10},
    "sweep": {"seed": 1, "method": ["dense", "rigl"]},
}


def test_ppo_sweep_resumes_byte_identical(tmp_path):
    """3 chunks of 64 steps, cut after the first: the resumed sweep's rows and state (networks,
    masks, Adam, env state mid-episode, running observation and reward statistics) equal the
    uninterrupted ones."""
    plan, state = interrupted_equals_uninterrupted(PPO, tmp_path)
    # the statistics start empty (TF-Agents: count 1e-8, mean 0, var 0) and count every
    # observation and raw reward of training: 192 each, so they were carried across the cut
    for stats in (state.obs_stats, state.reward_stats):
        np.testing.assert_array_equal(stats.count, 192.0)
        assert np.all(stats.mean != 0.0) and np.all(stats.var > 0.0)
    assert np.all(state.reward_stats.mean < 0.0)  # Pendulum's rewards are all <= 0
