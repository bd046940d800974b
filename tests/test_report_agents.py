"""`report` on actor-critic sweeps: the per-network columns (actual_sparsity_actor,
dormant_frac_critic, ...) reach the summary and are plotted, a panel per network.
The SAC sweep is test_actor_critic's (it calls check_per_network_report); PPO's is here."""

import struct

import numpy as np
import pandas as pd
import pytest

from purejaxsparse import sweep
from purejaxsparse.analysis.report import write_report
from purejaxsparse.config import plan_sweep

NETWORK_FINALS = ("final_actual_sparsity_actor", "final_actual_sparsity_critic",
                  "final_dormant_frac_actor", "final_dormant_frac_critic")

PPO_SWEEP = {
    "name": "ppo_tiny", "agent": "ppo", "env": {"name": "CartPole-v1", "max_steps_in_episode": 50},
    "total_steps": 512, "eval_every": 256, "eval_episodes": 2, "chunk_evals": 2,
    "agent_config": {"hidden": [8, 8], "num_envs": 2, "rollout_steps": 32, "minibatch_size": 32, "epochs": 1},
    "hparams": {"update_interval": 2, "end": 12},
    "method_defaults": {"prune": {"start": 2}},
    "sweep": {"seed": 2, "method": ["dense", "rigl", "prune"], "sparsity": [0.5, 0.9]},
}


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def check_per_network_report(out, group_cols=()):
    """The report of an actor-critic sweep in `out`: per-network summary columns that agree with
    results.csv, per-network figures (three panels: all networks, actor, critic) on the page."""
    index = write_report(out, reps=50)
    html = index.read_text()
    summary = pd.read_csv(out / "report" / "summary.csv")
    for col in group_cols:
        assert col in summary.columns[: list(summary.columns).index("n_runs")], col
    results = pd.read_csv(out / "results.csv")
    last = results[results.step == results.step.max()]
    runs = pd.read_csv(out / "runs.csv")
    assert summary.n_runs.sum() == len(runs)
    for col in NETWORK_FINALS:
        assert col in summary.columns and f"<th>{col}</th>" in html, col
        metric = col[len("final_"):]
        # the n_runs-weighted mean of the group means is the mean over all (complete) runs
        want = last[metric].mean()
        assert (summary[col] * summary.n_runs).sum() / summary.n_runs.sum() == pytest.approx(want, rel=1e-6)
    for name in ("score_vs_sparsity.png", "learning_curves.png", "dormant.png", "sparsity.png"):
        assert f"src='{name}'" in html and (out / "report" / name).is_file(), name
    for name in ("dormant.png", "sparsity.png"):  # 3 panels side by side: much wider than high
        width, height = png_size(out / "report" / name)
        assert width > 2.2 * height, (name, width, height)
    return summary


def test_ppo_report_plots_each_network(tmp_path):
    plan = plan_sweep(PPO_SWEEP)
    sweep.run_sweep(plan, tmp_path, progress=False, log=lambda *_: None)
    summary = check_per_network_report(tmp_path)
    assert set(summary.method) == {"dense", "rigl", "prune"} and len(summary) == 5
    rigl = summary[summary.method == "rigl"].set_index("sparsity")
    np.testing.assert_allclose(rigl.final_actual_sparsity_actor, [0.5, 0.9], atol=0.02)
    np.testing.assert_allclose(rigl.final_actual_sparsity_critic, [0.5, 0.9], atol=0.02)
