"""MinAtar as the CPU-scale proxy: DQN with the MinAtar network learns Breakout-MinAtar, the
network has the paper's shapes, and every shipped MinAtar config plans the runs it says."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import envs
import purejaxsparse as pjs
from purejaxsparse.config import load_config, plan_sweep

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# A tiny dense DQN on Breakout-MinAtar: 8k env steps, one Adam update per step (~35 s on a busy
# 2-core CPU). Final greedy returns of seeds 0, 1, 2: 6.5, 6.0, 6.5; random play: 0.4.
LEARN = {
    "agent": "dqn", "env": "Breakout-MinAtar", "total_steps": 8000, "eval_every": 4000, "eval_episodes": 100,
    "agent_config": {"network": "minatar", "batch_size": 32, "buffer_size": 8000, "learning_starts": 500,
                     "train_every": 1},
    "hparams": {"learning_rate": 1e-3, "epsilon": 0.1, "target_update_every": 200, "huber": True,
                "weight_decay": 0.0},
}


def random_policy_return(name: str, episodes: int = 2000) -> float:
    """Mean return of uniformly random actions, through envs.evaluate (no agent involved)."""
    env = envs.make(name)
    n = env.action_space.n
    policy = lambda k, obs: jax.random.randint(k, (obs.shape[0],), 0, n)
    returns = jax.jit(lambda k: envs.evaluate(env, policy, k, episodes))(jax.random.PRNGKey(123))
    return float(np.mean(np.asarray(returns)))


def test_minatar_dqn_beats_random_on_breakout():
    random_mean = random_policy_return("Breakout-MinAtar")
    assert 0.1 < random_mean < 1.0, random_mean  # a random paddle rarely returns the ball
    train = pjs.make_train(LEARN)
    _, metrics = jax.jit(train)(jax.random.PRNGKey(0), train.hparams())
    returns = np.asarray(metrics["eval_return"])
    assert returns.shape == (2,)
    final = float(returns[-1])  # mean over 100 greedy episodes
    # seeds 0, 1, 2 end at 6.5, 6.0, 6.5 (random: 0.4): the bar is about 3
    assert final > random_mean + 2.5 and final > 5 * random_mean, (final, random_mean)


@pytest.mark.parametrize("name", ["Breakout-MinAtar", "Seaquest-MinAtar"])
def test_minatar_network_shapes(name):
    env = envs.make(name)
    h, w, c = env.obs_shape
    n_actions = env.action_space.n
    assert (h, w) == (10, 10)
    config = {**LEARN, "env": name, "total_steps": 1000, "eval_every": 1000}
    train = pjs.make_train(config)
    agent = train.agent
    params, masks = agent.q.init(jax.random.PRNGKey(0), train.hparams(method="rigl").sparse())
    p = params["params"]
    # 3x3 VALID conv of 16 channels on 10x10: 8x8x16 flattened into fc 128, then one Q per action
    assert p["layer_0"]["kernel"].shape == (3, 3, c, 16)
    assert p["layer_1"]["kernel"].shape == ((h - 2) * (w - 2) * 16, 128) == (1024, 128)
    assert p["layer_2"]["kernel"].shape == (128, n_actions)
    assert [b["bias"].shape for b in (p["layer_0"], p["layer_1"], p["layer_2"])] == [(16,), (128,), (n_actions,)]
    assert len(p) == 3
    # all three kernels are sparse layers (first and last included)
    assert [tuple(k.shape) for k in agent.q.spec.kernel_leaves(masks)] == [
        (3, 3, c, 16), (1024, 128), (128, n_actions)]
    q = agent.q.apply(params, jnp.zeros((5, h, w, c)))
    assert q.shape == (5, n_actions)


def _optimizer_steps(config: dict) -> int:
    """Optimizer steps of one DQN run: one every train_every env steps from learning_starts on."""
    ac = config["agent_config"]
    return (config["total_steps"] - ac["learning_starts"]) // ac.get("train_every", 1) + 1


# expected run counts, written out by hand from each config's sweep
EXPECTED_RUNS = {
    # 5 seeds x (dense x bias on/off + (rigl, prune) x bias on/off x 4 sparsities)
    "minatar_ganaie.yaml": 5 * (2 + 2 * 2 * 4),
    # 5 seeds x ReDo off/on x (dense, prune at 90% and 95%)
    "minatar_obando_ceron.yaml": 5 * 2 * (1 + 2),
    # 2 seeds x (dense, rigl, prune at 90%) x bias on/off
    "quick/minatar_breakout.yaml": 2 * 3 * 2,
}


def test_every_minatar_config_plans_its_runs():
    found = sorted(str(p.relative_to(CONFIGS)) for p in
                   list(CONFIGS.glob("minatar_*.yaml")) + list(CONFIGS.glob("quick/minatar_*.yaml")))
    assert found == sorted(EXPECTED_RUNS)
    for rel, expected in EXPECTED_RUNS.items():
        config = load_config(CONFIGS / rel)
        plan = plan_sweep(config)
        assert plan.num_runs == expected, rel
        assert plan.agent.static.network == "minatar"
        assert plan.config["env"] in envs.registered() and plan.config["env"].endswith("-MinAtar")
        # sparse training from ~20% to ~80% of the optimizer steps, for every sparse method
        n = _optimizer_steps(config)
        for run in plan.runs:
            if run["method"] in ("rigl", "prune"):
                assert abs(run["start"] - 0.2 * n) <= 0.01 * n, (rel, run)
                assert abs(run["end"] - 0.8 * n) <= 0.01 * n, (rel, run)


def test_ganaie_grid_is_the_study():
    plan = plan_sweep(load_config(CONFIGS / "minatar_ganaie.yaml"))
    grid = {(r["method"], r["use_bias"], r["sparsity"]) for r in plan.runs}
    sparse = {(m, b, s) for m in ("rigl", "prune") for b in (True, False) for s in (0.8, 0.9, 0.95, 0.98)}
    assert grid == sparse | {("dense", True, 0.0), ("dense", False, 0.0)}
    assert sorted({r["seed"] for r in plan.runs}) == [0, 1, 2, 3, 4]
