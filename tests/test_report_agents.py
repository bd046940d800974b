"""`report` on actor-critic sweeps: the per-network columns (actual_sparsity_actor,
dormant_frac_critic, ...) reach the summary and are plotted, a panel per network.
The SAC sweep is test_actor_critic's (it calls check_per_network_report); PPO's is here."""

import numpy as np

from conftest import check_per_network_report
from purejaxsparse import sweep
from purejaxsparse.config import plan_sweep

PPO_SWEEP = {
    "name": "ppo_tiny", "agent": "ppo", "env": {"name": "CartPole-v1", "max_steps_in_episode": 50},
    "total_steps": 512, "eval_every": 256, "eval_episodes": 2, "chunk_evals": 2,
    "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 32, "minibatch_size": 32, "epochs": 1},
    "hparams": {"update_interval": 2, "end": 12},
    "method_defaults": {"prune": {"start": 2}},
    "sweep": {"seed": 2, "method": ["dense", "rigl", "prune"], "sparsity": [0.5, 0.9]},
}





def test_ppo_report_plots_each_network(tmp_path):
    plan = plan_sweep(PPO_SWEEP)
    sweep.run_sweep(plan, tmp_path, progress=False, log=lambda *_: None)
    summary = check_per_network_report(tmp_path)
    assert set(summary.method) == {"dense", "rigl", "prune"} and len(summary) == 5
    rigl = summary[summary.method == "rigl"].set_index("sparsity")
    np.testing.assert_allclose(rigl.final_actual_sparsity_actor, [0.5, 0.9], atol=0.02)
    np.testing.assert_allclose(rigl.final_actual_sparsity_critic, [0.5, 0.9], atol=0.02)
