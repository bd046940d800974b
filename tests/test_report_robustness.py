"""report / robustness / gradient SNR columns on a real (tiny) sweep directory.
(The SNR formula itself is tested in test_dqn.py, against rigl's log_snr.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import tiny_sweep_config
from conftest import png_size
from purejaxsparse import sweep
from purejaxsparse.store import SweepCheckpoints
from purejaxsparse.cli import main
from purejaxsparse.config import load_config, plan_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

EPISODES = 4


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("snr")
    config = tiny_sweep_config(agent_config={"hidden": [16, 16], "batch_size": 16, "buffer_size": 500,
                                             "learning_starts": 100, "grad_snr": True, "snr_every": 50})
    sweep.run_sweep(plan_sweep(config), out, progress=False, log=lambda *_: None)
    return out


def test_grad_snr_columns(sweep_dir):
    results = pd.read_csv(sweep_dir / "results.csv")
    assert {"grad_snr", "grad_snr_active"} <= set(results.columns)
    for col in ("grad_snr", "grad_snr_active"):
        assert np.all(np.isfinite(results[col])) and np.all(results[col] > 0)


def test_report_cli_matches_independent_iqm(sweep_dir, capsys):
    assert main(["report", str(sweep_dir), "--reps", "200"]) == 0
    report = sweep_dir / "report"
    summary = pd.read_csv(report / "summary.csv")
    results = pd.read_csv(sweep_dir / "results.csv")
    finals = {}
    for run, g in results.sort_values("step").groupby("run"):
        k = max(1, int(0.1 * len(g)))
        finals[run] = (g.method.iloc[0], g.eval_return.iloc[-k:].mean())
    for _, row in summary.iterrows():
        x = [v for m, v in finals.values() if m == row.method]
        assert row.iqm == pytest.approx(scipy.stats.trim_mean(x, 0.25), rel=1e-6)
        assert row.ci_low <= row.iqm <= row.ci_high
    html = (report / "index.html").read_text()
    pngs = list(report.glob("*.png"))
    assert len(pngs) >= 4
    for png in pngs:
        assert png.name in html and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "grad_snr.png" in html
    width, height = png_size(report / "grad_snr.png")
    assert width > 1.6 * height  # two panels: every weight entry, active entries


def _numpy_greedy_returns(params, obs_fn_env, reset_key, episodes):
    """Returns of the greedy policy of a ReLU Q-network (numpy forward pass, float32) on the
    first episode of each of `episodes` envs reset from `reset_key`: an evaluation written
    independently of robustness.py, the agents' policies and envs.evaluate."""
    env = obs_fn_env.with_num_envs(episodes)
    step = jax.jit(env.step)
    state, obs = env.reset(reset_key)
    layers = sorted(params["params"], key=lambda name: int(name.split("_")[1]))
    weights = [(np.asarray(params["params"][n]["kernel"], np.float32), np.asarray(params["params"][n]["bias"], np.float32))
               for n in layers]
    ret, done = np.zeros(episodes, np.float64), np.zeros(episodes, bool)
    key = jax.random.PRNGKey(123)  # the env's step randomness does not matter for CartPole
    for _ in range(env.max_episode_steps):
        h = np.asarray(obs, np.float32)
        for i, (w, b) in enumerate(weights):
            h = h @ w + b
            h = np.maximum(h, 0) if i < len(weights) - 1 else h
        key, k = jax.random.split(key)
        state, obs, reward, terminated, truncated, _ = step(k, state, jnp.asarray(h.argmax(-1), jnp.int32))
        ret += np.where(done, 0.0, np.asarray(reward))
        done |= np.asarray(terminated) | np.asarray(truncated)
        if done.all():
            break
    return ret


def test_robustness_refreshes_the_report_and_noise_matters(sweep_dir):
    assert main(["report", str(sweep_dir), "--reps", "50"]) == 0
    assert "robustness.png" not in (sweep_dir / "report" / "index.html").read_text()
    assert main(["robustness", str(sweep_dir), "--sigma", "0,2.0", "--episodes", str(EPISODES)]) == 0
    html = (sweep_dir / "report" / "index.html").read_text()
    assert "src='robustness.png'" in html and (sweep_dir / "report" / "robustness.png").is_file()
    table = pd.read_csv(sweep_dir / "report" / "robustness.csv")
    plan = plan_sweep(load_config(sweep_dir / "config.yaml"))
    assert len(table) == 2 * plan.num_runs and set(table.sigma) == {0.0, 2.0}
    # sigma 0: the greedy policy of each run's final params, evaluated here independently on the
    # episodes robustness draws (each run's key folded with 0x5EED, then its reset key)
    agent = plan.agent
    ckpt = SweepCheckpoints(sweep_dir / "checkpoints")
    assert ckpt.latest() == plan.num_chunks
    states = ckpt.restore(ckpt.latest(), jax.jit(jax.vmap(agent.init))(plan.keys, plan.hparams))
    ckpt.close()
    got = table[table.sigma == 0].sort_values("run").eval_return.to_numpy()
    for r in range(plan.num_runs):
        reset_key = jax.random.split(jax.random.fold_in(plan.keys[r], 0x5EED))[0]
        params = jax.tree.map(lambda x: x[r], states.params)
        want = _numpy_greedy_returns(params, agent.eval_env, reset_key, EPISODES).mean()
        assert got[r] == pytest.approx(want, rel=1e-6), r
    # noise on the observations changes what the policies do
    noisy = table[table.sigma == 2.0].sort_values("run").eval_return.to_numpy()
    assert not np.allclose(noisy, got)


def test_robustness_bad_sigma(sweep_dir, capsys):
    assert main(["robustness", str(sweep_dir), "--sigma", "0,-1"]) == 2
    assert "--sigma" in capsys.readouterr().err
