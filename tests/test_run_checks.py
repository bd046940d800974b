"""What a run must satisfy before it is compiled: values in range wherever hparams are made, a
mask schedule that ends within the run's optimizer steps, and no layer left without a weight.
Expected step counts and layer counts are worked out by hand in the comments."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.agents.dqn import DQNHParams
from purejaxsparse.agents.sac import SACHParams
from purejaxsparse.cli import main
from purejaxsparse.config import apply_overrides, build_agent, load_config, plan_sweep
from purejaxsparse.fields import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUICKSTART = CONFIGS / "quickstart.yaml"  # DQN, 30,000 env steps, learning_starts 1000, hidden [128, 128]


def _plan(path, *overrides):
    return plan_sweep(apply_overrides(load_config(path), list(overrides)))


# -- the run's optimizer steps ------------------------------------------------------------------

def _agent(agent, total, every, env, **agent_config):
    return build_agent({"agent": agent, "env": env, "total_steps": total, "eval_every": every, "eval_episodes": 1,
                        "agent_config": agent_config})


@pytest.mark.parametrize("agent, want", [
    # DQN, 1 env, learning_starts 1000: updates at env steps 1000..30000
    (("dqn", 30_000, 1000, "CartPole-v1"), 29_001),
    # DQN, 4 envs, train_every 2, learning_starts 100: 300 iterations of 4 env steps; the first
    # update in iteration 24 (env steps 97-100), then iterations 26, ..., 298: (298 - 24) / 2 + 1
    (("dqn", 1200, 400, "CartPole-v1", dict(num_envs=4, train_every=2, learning_starts=100)), 138),
    # DQN without warm-up: an update in every one of the 400 iterations
    (("dqn", 400, 200, "CartPole-v1", dict(learning_starts=0)), 400),
    # SAC, 3 updates per iteration, learning_starts 100: iterations 99..399 = 301 rounds x 3
    (("sac", 400, 200, "Pendulum-v1", dict(updates_per_iteration=3, learning_starts=100)), 903),
    # PPO: 512 / (4 envs x 32 steps) = 4 rollouts x 2 epochs x (128 / 32 = 4 minibatches)
    (("ppo", 512, 256, "CartPole-v1", dict(num_envs=4, rollout_steps=32, minibatch_size=32, epochs=2)), 32),
    # configs/quick/ppo_cartpole.yaml's settings: 200 rollouts x 4 epochs x 4 minibatches
    (("ppo", 102_400, 5120, "CartPole-v1", dict(num_envs=4, rollout_steps=128, minibatch_size=128, epochs=4)),
     3200),
])
def test_optimizer_steps_of_each_agent_by_hand(agent, want):
    name, total, every, env, *static = agent
    steps, how = _agent(name, total, every, env, **(static[0] if static else {})).optimizer_steps()
    assert steps == want and how


# -- schedules against the run ------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    # the quickstart's last optimizer step is 29,000 (29,001 steps): an `end` in env steps is refused
    (("hparams.end=40000",), "end: 40000 (set) is beyond the run's last optimizer step, 29000 (29,001 opt"),
    (("sweep.method=[prune]", "hparams.end=29001"),
     "end: 29001 (prune) is beyond the run's last optimizer step, 29000 "),
    (("sweep.method=[prune]", "hparams.end=40000", "method_defaults.prune.start=29500"), "start: 29500 (prune)"),
    (("sweep.method=[rigl]", "hparams.start=29001", "hparams.start_mode=dense_then_cut"), "start: 29001 (rigl)"),
    (("sweep.method=[set]", "hparams.start=29001", "hparams.end=29000"), "start: 29001 (set)"),
    (("sweep.method=[static]", "hparams.start=30000", "hparams.start_mode=dense_then_cut"), "start: 30000 (static)"),
    (("total_steps=20000",), "end: 22000 (set) is beyond the run's last optimizer step, 19000"),
])
def test_a_schedule_beyond_the_run_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        _plan(QUICKSTART, *overrides)


def test_a_schedule_that_ends_on_the_last_step_plans():
    """The boundary: a schedule may end on the last optimizer step; a static run's delayed start
    (its mask never changes) and dense runs' unused settings are not schedule steps."""
    assert _plan(QUICKSTART, "sweep.method=[set,rigl,prune]", "hparams.end=29000").num_runs == 9
    assert _plan(QUICKSTART, "sweep.method=[static]", "hparams.start=40000").num_runs == 3
    assert _plan(QUICKSTART, "sweep.method=[dense]", "hparams.end=40000").num_runs == 3


def test_ppo_schedule_counts_minibatch_updates():
    """PPO's clock is minibatch updates: 3,200 in configs/quick/ppo_cartpole.yaml, so an `end` of
    10^9 (or of 3,200) is refused and 3,199 plans."""
    ppo = CONFIGS / "quick" / "ppo_cartpole.yaml"
    for end in (1_000_000_000, 3200):
        with pytest.raises(ConfigError, match=rf"^end: {end} \(set\) is beyond the run's last optimizer step, "
                                              r"3199 \(3,200 optimizer steps in 102,400 env steps: 4 epochs x 4 "
                                              r"minibatches"):
            _plan(ppo, f"hparams.end={end}")
    assert _plan(ppo, "hparams.end=3199").num_runs == 27


def test_the_cli_refuses_it_in_one_line_with_exit_code_2(capsys):
    assert main(["run", str(QUICKSTART), "--dry-run", "hparams.end=40000"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "40000" in err and "29000" in err and "Traceback" not in err


# -- degenerate networks ------------------------------------------------------------------------

def test_a_layer_without_weights_is_refused():
    """The quickstart's Q-network: kernels 4x128 (512), 128x128 (16,384), 128x2 (256).
    Uniform 99.9%: round(0.512) = 1, round(16.384) = 16, round(0.256) = 0 active weights, so the
    output layer is empty; at 99.8%, round(0.512) = 1 weight is left there."""
    with pytest.raises(ConfigError, match=r"^sparsity: 0\.999 leaves layer params/layer_2/kernel \(128x2\) of the q "
                                          r"network of the static runs \(uniform\) with no active weight"):
        _plan(QUICKSTART, "sweep.sparsity=[0.999]", "hparams.distribution=uniform")
    assert _plan(QUICKSTART, "sweep.sparsity=[0.998]", "hparams.distribution=uniform").num_runs == 15
    # ERK at 99.999%: (1 - 0.99999) x 17,152 = 0.17 weights in all: every layer is empty, the first named
    with pytest.raises(ConfigError, match=r"^sparsity: 0\.99999 leaves layer params/layer_0/kernel \(4x128\)"):
        _plan(QUICKSTART, "sweep.sparsity=[0.99999]")
    # pruning starts dense but ends there: refused too; dense ignores sparsity
    with pytest.raises(ConfigError, match=r"layer_2/kernel \(128x2\) of the q network of the prune runs"):
        _plan(QUICKSTART, "sweep.method=[dense,prune]", "sweep.sparsity=[0.999]", "hparams.distribution=uniform")


def test_a_layer_without_weights_is_refused_per_network():
    """PPO on CartPole: the actor's kernels 4x64 (256), 64x64 (4,096), 64x2 (128). An actor at
    uniform 99.7%: round(0.768) = 1, round(12.288) = 12, round(0.384) = 0, its output layer empty."""
    ppo = CONFIGS / "quick" / "ppo_cartpole.yaml"
    with pytest.raises(ConfigError, match=r"^sparsity: 0\.9 \(its actor network's: 0\.997\) leaves layer "
                                          r"params/layer_2/kernel \(64x2\) of the actor network"):
        _plan(ppo, "sweep.actor_sparsity=[0.997]", "hparams.distribution=uniform")


# -- one validation path ------------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    (dict(sparsity=1.5), "sparsity: got 1.5; allowed: a number in [0.0, 1.0)"),
    (dict(sparsity=1.0), "sparsity: got 1.0; allowed: a number in [0.0, 1.0)"),
    (dict(drop_fraction=2.0), "drop_fraction: got 2.0; allowed: a number in [0.0, 1.0]"),
    (dict(sparsity=float("nan")), "sparsity: got nan; allowed"),
    (dict(update_interval=0), "update_interval: got 0; allowed: an integer in [1, inf]"),
    (dict(update_interval=2.5), "update_interval: got 2.5; allowed: an integer"),
    (dict(end=-1), "end: got -1; allowed: an integer in [0, inf]"),
    (dict(method=7), "method: got 7; allowed: one of dense, dense_width, static, set, rigl, prune"),
    (dict(distribution="erdos"), "distribution: got 'erdos'; allowed: one of uniform, er, erk"),
    (dict(use_bias=1), "use_bias: got 1; allowed: true or false"),
    (dict(sparsity=np.array([0.5, 1.2], np.float32)), "sparsity: got 1.2; allowed: a number in [0.0, 1.0)"),
    (dict(start=jnp.asarray(-3)), "start: got -3; allowed: an integer in [0, inf]"),
])
def test_sparse_hparams_make_checks_what_the_config_checks(values, message):
    with pytest.raises(ValueError, match="^" + message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        sp.SparseHParams.make(**{"method": "rigl", "sparsity": 0.9, **values})


def test_agent_hparams_make_hparams_and_stack_hparams_check_too():
    with pytest.raises(ValueError, match=r"^gamma: got 2\.0; allowed: a number in \[0\.0, 1\.0\]"):
        DQNHParams.make("rigl", gamma=2.0)
    with pytest.raises(ValueError, match=r"^actor_sparsity: got 1\.0; allowed: a number in \[0\.0, 1\.0\) or null"):
        SACHParams.make("rigl", actor_sparsity=1.0)
    assert float(SACHParams.make("rigl").actor_sparsity) == -1.0  # unset
    config = load_config(QUICKSTART)
    with pytest.raises(ValueError, match=r"^sparsity: got 1\.5; allowed"):
        pjs.make_hparams(config, method="rigl", sparsity=1.5)
    good = pjs.make_hparams(config, method="rigl")
    for bad, message in ((good.replace(sparsity=np.float32(1.5)), r"^sparsity: got 1\.5; allowed"),
                         (good.replace(method=np.int32(9)), r"^method: got 9; allowed: one of"),
                         (good.replace(learning_rate=np.float32(np.inf)), r"^learning_rate: got inf; allowed"),
                         (good.replace(huber=np.float32(1.0)), r"^huber: got 1\.0; allowed: true or false")):
        with pytest.raises(ValueError, match=message):
            pjs.stack_hparams([bad])
    stacked = pjs.stack_hparams([good, good.replace(sparsity=np.float32(0.0), drop_fraction=np.float32(1.0))])
    np.testing.assert_array_equal(np.asarray(stacked.sparsity), np.float32([0.9, 0.0]))


def test_traced_values_pass_through_make():
    """Inside jit/vmap a value cannot be read: make() passes it on (the program takes it as given)."""
    hp = jax.vmap(lambda s: sp.SparseHParams.make("rigl", s))(jnp.asarray([0.5, 0.8]))
    np.testing.assert_allclose(np.asarray(hp.sparsity), [0.5, 0.8])
    assert jax.jit(lambda s: sp.SparseHParams.make("set", s).sparsity)(jnp.float32(0.7)) == np.float32(0.7)
