"""report / robustness / gradient SNR on a real (tiny) sweep directory."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.stats

import envs
from conftest import tiny_sweep_config
from purejaxsparse import sweep
from purejaxsparse.agents.common import gradient_snr
from purejaxsparse.checkpoint import SweepCheckpoints
from purejaxsparse.cli import main
from purejaxsparse.config import load_config, plan_sweep
from purejaxsparse.robustness import run_robustness


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("snr")
    config = tiny_sweep_config(agent_config={"hidden": [16, 16], "batch_size": 16, "buffer_size": 500,
                                             "learning_starts": 100, "grad_snr": True, "snr_batch": 8})
    sweep.run_sweep(plan_sweep(config), out, progress=False, log=lambda *_: None)
    return out


def test_grad_snr_column(sweep_dir):
    results = pd.read_csv(sweep_dir / "results.csv")
    assert list(results.columns)[-1] == "grad_snr"
    assert np.all(np.isfinite(results.grad_snr)) and np.all(results.grad_snr > 0)


def test_gradient_snr_formula():
    g = {"a": jnp.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]]), "b": jnp.array([[1.0], [-1.0], [0.0]])}
    masks = {"a": jnp.array([True, False]), "b": jnp.array([True])}
    # active entries: a[:,0] -> |3| / std([1,3,5]); b[:,0] -> |0| / std
    want = (3.0 / np.std([1, 3, 5]) + 0.0) / 2
    assert float(gradient_snr(g, masks)) == pytest.approx(want, rel=1e-5)


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


def test_robustness_cli_and_sigma_zero(sweep_dir):
    assert main(["robustness", str(sweep_dir), "--sigma", "0,2.0", "--episodes", "4"]) == 0
    table = pd.read_csv(sweep_dir / "report" / "robustness.csv")
    plan = plan_sweep(load_config(sweep_dir / "config.yaml"))
    assert len(table) == 2 * plan.num_runs and set(table.sigma) == {0.0, 2.0}
    assert (sweep_dir / "report" / "robustness.png").exists()
    # sigma 0 is exactly the evaluation policy of the final params on those episodes
    agent = plan.agent
    ckpt = SweepCheckpoints(sweep_dir / "checkpoints")
    states = ckpt.restore(ckpt.latest(), jax.jit(jax.vmap(agent.init))(plan.keys, plan.hparams))
    ckpt.close()
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 0x5EED))(plan.keys)
    env = agent.eval_env.with_num_envs(4)
    direct = jax.jit(jax.vmap(lambda s, h, k: envs.evaluate(env, agent.eval_policy(s, h), k, 4).mean()))(
        states, plan.hparams, keys)
    got = table[table.sigma == 0].sort_values("run").eval_return.to_numpy()
    np.testing.assert_allclose(got, np.asarray(direct), rtol=1e-6)


def test_robustness_bad_sigma(sweep_dir, capsys):
    assert main(["robustness", str(sweep_dir), "--sigma", "0,-1"]) == 2
    assert "--sigma" in capsys.readouterr().err
