"""Actor-critic sweeps: per-network sparsity (actor_sparsity x critic_sparsity and the
fixed-budget actor_param_fraction) in one compiled program, results schema, and the helpers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from purejaxsparse import sparse as sp
from purejaxsparse import sweep
from purejaxsparse.agents.actor_critic import NETWORK_METRICS, gaussian_log_prob, network_sparsities
from purejaxsparse.agents.normalizer import RunningStats
from purejaxsparse.agents.squashed_gaussian import tanh_gaussian_sample, to_env_action
from purejaxsparse.agents.base import METRICS
from purejaxsparse.config import plan_sweep
from purejaxsparse.fields import ConfigError
from conftest import check_per_network_report

BASE = ["run", "env", "agent", "method", "sparsity", "seed", "step", *METRICS]

SPLIT_SWEEP = {
    "name": "split", "agent": "sac", "env": "Pendulum-v1", "total_steps": 400, "eval_every": 200,
    "eval_episodes": 2, "chunk_evals": 1,
    "agent_config": {"hidden": [16, 16], "batch_size": 16, "buffer_size": 400, "learning_starts": 100},
    "hparams": {"sparsity": 0.8, "update_interval": 50, "end": 250},
    "sweep": {"seed": 1, "method": ["dense", "rigl"], "actor_param_fraction": [None, 0.25, 0.75],
              "actor_sparsity": [0.5, 0.9], "critic_sparsity": [0.7, 0.95]},
}


def _kernel_count(spec, sparsity) -> int:
    shapes = spec.shapes
    return int(np.asarray(sp.active_counts(shapes, sp.layer_sparsities(shapes, sparsity))).sum())


def test_per_network_sparsity_sweep(tmp_path):
    """actor_sparsity x critic_sparsity x actor_param_fraction as one compiled sweep (the costly
    part, so one test): schema, per-network targets, the fixed budget."""
    plan = plan_sweep(SPLIT_SWEEP)
    before = sweep.TRACE_COUNT["chunk"]
    sweep.run_sweep(plan, tmp_path, progress=False, log=lambda *_: None)
    _check_compiles_once_and_keeps_schema(tmp_path, plan, sweep.TRACE_COUNT["chunk"] - before)
    _check_each_network_hits_its_own_target(tmp_path, plan)
    _check_actor_param_fraction_keeps_the_budget(tmp_path, plan)


def _check_compiles_once_and_keeps_schema(out, plan, traces):
    assert traces == 1 and plan.num_chunks == 2
    # dense ignores the per-network settings: 1 dense run + 3 x 2 x 2 rigl runs
    assert plan.num_runs == 13
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == BASE + list(NETWORK_METRICS) + ["diverged_step"]  # the engine's
    assert len(results) == plan.num_runs * 2 and set(results.agent) == {"sac"}
    for col in ("dormant_frac", "dormant_frac_actor", "dormant_frac_critic"):
        assert results[col].between(0, 1).all()
    runs = pd.read_csv(out / "runs.csv")
    for col in ("actor_sparsity", "critic_sparsity", "actor_param_fraction", "total_params", "active_params"):
        assert col in runs.columns
    dense = runs[runs.method == "dense"]
    assert dense.actor_sparsity.isna().all() and dense.actor_param_fraction.isna().all()
    last = results[results.step == results.step.max()].set_index("run")
    assert (last.active_params == runs.set_index("run").active_params).all()  # predicted final count
    assert (last.active_params == last.active_params_actor + last.active_params_critic).all()
    # the report: per-network summary columns and figures, and the swept per-network settings as groups
    summary = check_per_network_report(out, group_cols=("actor_sparsity", "critic_sparsity", "actor_param_fraction"))
    assert len(summary) == plan.num_runs and (summary.n_runs == 1).all()


def _check_each_network_hits_its_own_target(out, plan):
    agent = plan.agent
    results = pd.read_csv(out / "results.csv")
    last = results[results.step == results.step.max()].set_index("run")
    runs = pd.read_csv(out / "runs.csv").set_index("run")
    n_a, n_c = agent.actor.spec.num_kernel_params, agent.critic.spec.num_kernel_params
    checked = 0
    for run, row in runs[(runs.method == "rigl") & runs.actor_param_fraction.isna()].iterrows():
        got = last.loc[run]
        want_a = _kernel_count(agent.actor.spec, row.actor_sparsity)
        want_c = 2 * _kernel_count(agent.critic.spec, row.critic_sparsity)
        assert round((1 - got.actual_sparsity_actor) * n_a) == want_a
        assert round((1 - got.actual_sparsity_critic) * 2 * n_c) == want_c
        assert abs(got.actual_sparsity_actor - row.actor_sparsity) < 0.01
        assert abs(got.actual_sparsity_critic - row.critic_sparsity) < 0.01
        total = (1 - got.actual_sparsity) * (n_a + 2 * n_c)
        assert abs(total - (want_a + want_c)) < 0.5
        checked += 1
    assert checked == 4
    dense = last.loc[runs.index[runs.method == "dense"]]
    assert (dense[["actual_sparsity", "actual_sparsity_actor", "actual_sparsity_critic"]] == 0).all().all()


def _check_actor_param_fraction_keeps_the_budget(out, plan):
    agent = plan.agent
    results = pd.read_csv(out / "results.csv")
    last = results[results.step == results.step.max()].set_index("run")
    runs = pd.read_csv(out / "runs.csv").set_index("run")
    n_a, n_c = agent.actor.spec.num_kernel_params, 2 * agent.critic.spec.num_kernel_params
    budget = (1 - 0.8) * (n_a + n_c)
    layers = agent.actor.spec.num_layers + 2 * agent.critic.spec.num_layers
    for f in (0.25, 0.75):
        rows = last.loc[runs.index[(runs.method == "rigl") & (runs.actor_param_fraction == f)]]
        assert len(rows) == 4
        for _, got in rows.iterrows():
            actor = (1 - got.actual_sparsity_actor) * n_a
            critic = (1 - got.actual_sparsity_critic) * n_c
            assert abs(actor + critic - budget) <= 0.5 * layers  # per-layer rounding only
            assert abs(actor / (actor + critic) - f) < 0.02
            assert abs(got.actual_sparsity - 0.8) < 0.01


def test_network_sparsities_resolution():
    from purejaxsparse.config import build_agent
    agent = build_agent(SPLIT_SWEEP)
    mk = lambda **v: plan_sweep({**SPLIT_SWEEP, "sweep": {"method": "rigl"}, "hparams": {  # noqa: E731
        **SPLIT_SWEEP["hparams"], **v}}).hparams
    hp = jax.tree.map(lambda x: x[0], mk())
    np.testing.assert_allclose(np.asarray(network_sparsities(hp, 10, 30)), [0.8, 0.8], rtol=1e-6)
    hp = jax.tree.map(lambda x: x[0], mk(actor_sparsity=0.5))
    np.testing.assert_allclose(np.asarray(network_sparsities(hp, 10, 30)), [0.5, 0.8], rtol=1e-6)
    hp = jax.tree.map(lambda x: x[0], mk(critic_sparsity=0.6, actor_param_fraction=0.5))
    s_a, s_c = (float(x) for x in network_sparsities(hp, 10, 30))  # budget 8: 4 + 4
    assert s_a == pytest.approx(0.6) and s_c == pytest.approx(1 - 4 / 30)
    hp = jax.tree.map(lambda x: x[0], mk(sparsity=0.0, actor_param_fraction=0.9))
    s_a, s_c = (float(x) for x in network_sparsities(hp, 10, 30))  # 36 > 10 weights: clipped
    assert s_a == 0.0 and s_c == pytest.approx(1 - 4 / 30)
    with pytest.raises(ConfigError, match="actor_param_fraction"):
        plan_sweep({**SPLIT_SWEEP, "sweep": {"actor_param_fraction": [1.5]}})
    assert agent.networks().keys() == {"actor", "critic1", "critic2"}
    assert agent.total_params() == agent.actor.spec.num_params + 2 * agent.critic.spec.num_params


def test_tanh_gaussian_log_prob_and_scaling():
    key = jax.random.PRNGKey(0)
    mean, log_std = jnp.array([[0.3, -1.0]]), jnp.array([[-0.5, 0.2]])
    half = jnp.array([0.4, 2.0])
    a, logp = tanh_gaussian_sample(key, mean, log_std, half)
    u = jnp.arctanh(a)
    naive = gaussian_log_prob(u, mean, log_std) - jnp.sum(jnp.log(half * (1 - a ** 2)), -1)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(naive), rtol=1e-4)
    from purejaxsparse import envs
    box = envs.Box(low=np.array([-0.4, 0.0]), high=np.array([0.4, 4.0]), shape=(2,))
    np.testing.assert_allclose(np.asarray(to_env_action(jnp.array([[-1.0, 1.0], [0.0, 0.0]]), box)),
                               [[-0.4, 4.0], [0.0, 2.0]])


def test_running_stats_match_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, (50, 3)).astype(np.float32)
    stats = RunningStats.create((3,)).update(jnp.asarray(x[:20])).update(jnp.asarray(x[20:]))
    np.testing.assert_allclose(np.asarray(stats.mean), x.mean(0), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(stats.var), x.var(0), rtol=1e-3)
    assert math.isclose(float(stats.count), 50, rel_tol=1e-5)

