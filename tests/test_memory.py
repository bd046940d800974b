"""Memory estimate of a sweep: bytes by category against hand counts, the one-line refusal of a
sweep that cannot fit (CLI: exit 2, nothing written), the printed estimate, and resume."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from conftest import tiny_sweep_config
from purejaxsparse import memory, sweep
from purejaxsparse.cli import main
from purejaxsparse.config import plan_sweep
from purejaxsparse.fields import ConfigError
from purejaxsparse.store import SweepDir
from purejaxsparse.nets import MLP

QUICKSTART = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")
F32, I32, BOOL = 4, 4, 1


def n_params(module, in_dim: int) -> int:
    """Parameter count straight from the flax module's shapes."""
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, in_dim)))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


def quickstart_like(**agent_config):
    return {"agent": "dqn", "env": "CartPole-v1", "total_steps": 2000, "eval_every": 1000, "eval_episodes": 2,
            "agent_config": {"hidden": [128, 128], "batch_size": 64, "buffer_size": 30000,
                             "learning_starts": 1000, **agent_config},
            "sweep": {"seed": 3, "method": ["dense", "static", "set", "rigl", "prune"]},
            "method_defaults": {"prune": {"start": 500}}, "hparams": {"end": 900}}  # 1,001 optimizer steps


def test_dqn_bytes_match_a_hand_count():
    plan = plan_sweep(quickstart_like())
    assert plan.agent.env.obs_shape == (4,) and plan.agent.env.action_space.n == 2
    est = memory.estimate(plan, device_memory=10**12)
    # replay: obs + next_obs (4 float32 each), action int32, reward float32, terminated bool
    assert est.per_run["replay"] == 30000 * (2 * 4 * F32 + I32 + F32 + BOOL) == 1_230_000
    n = n_params(MLP(hidden=(128, 128), out_dim=2), 4)
    assert n == (4 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)
    assert est.per_run["params"] == 2 * n * F32                # online + target
    assert est.per_run["optimizer"] == 2 * n * F32 + 2 * I32   # Adam mu, nu, its count and the mask schedule's
    assert est.per_run["masks"] == n * BOOL                    # kernels and biases
    assert est.num_runs == 15 and est.total_bytes == 15 * est.per_run_bytes


def test_sac_and_ppo_bytes_match_a_hand_count():
    sac = {"agent": "sac", "env": "Pendulum-v1", "total_steps": 2000, "eval_every": 1000, "eval_episodes": 2,
           "agent_config": {"hidden": [32, 32], "buffer_size": 5000, "learning_starts": 100},
           "sweep": {"seed": 2}}
    est = memory.estimate(plan_sweep(sac), device_memory=10**12)
    actor, critic = n_params(MLP(hidden=(32, 32), out_dim=2), 3), n_params(MLP(hidden=(32, 32), out_dim=1), 4)
    # obs + next_obs (3 float32), action (1 float32), reward, terminated
    assert est.per_run["replay"] == 5000 * (2 * 3 * F32 + F32 + F32 + BOOL)
    assert est.per_run["params"] == (actor + 2 * critic + 2 * critic) * F32   # twin critics + targets
    ppo = {"agent": "ppo", "env": "CartPole-v1", "total_steps": 1024, "eval_every": 512, "eval_episodes": 2,
           "agent_config": {"hidden": [16, 16], "num_envs": 2, "rollout_steps": 64, "minibatch_size": 32},
           "sweep": {"seed": 1}}
    est = memory.estimate(plan_sweep(ppo), device_memory=10**12)
    assert est.per_run["replay"] == 0
    assert est.per_run["params"] == (n_params(MLP(hidden=(16, 16), out_dim=2), 4)
                                     + n_params(MLP(hidden=(16, 16), out_dim=1), 4)) * F32


def test_runs_that_fit():
    per_run = dict.fromkeys(memory.CATEGORIES, 0) | {"replay": 1000}
    gpu = memory.MemoryEstimate(per_run, num_runs=10, num_devices=4, shared=False, available=3000, where="x")
    assert gpu.runs_per_device == 3 and gpu.padded_runs == 12
    assert gpu.max_runs == 2 * 4 and not gpu.fits            # 2 runs per device within 90% of 3000
    cpu = memory.MemoryEstimate(per_run, num_runs=10, num_devices=1, shared=True, available=12_000, where="x")
    assert cpu.max_runs == 10 and cpu.fits
    assert not memory.MemoryEstimate(per_run, 11, 1, True, 12_000, "x").fits
    assert memory.parse_bytes("80GB") == 80 * 10**9 and memory.parse_bytes("24GiB") == 24 * 2**30
    assert memory.parse_bytes("141e9") == 141 * 10**9 and memory.parse_bytes(512) == 512
    with pytest.raises(ConfigError, match="--device-memory"):
        memory.parse_bytes("lots", "--device-memory")


def _cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_quickstart_with_a_huge_buffer_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "16GB")
    out = tmp_path / "out"
    code, stdout, err = _cli(["run", QUICKSTART, "--out", str(out), "--no-progress",
                              "agent_config.buffer_size=1000000000"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("purejaxsparse: error: memory: 15 runs need 615.0 GB") and "replay 41.0 GB" in err
    assert "not even 1 run fits" in err and "agent_config.buffer_size" in err
    assert "temporaries" not in err  # refused before compiling
    assert not out.exists()
    # 410 MB per run: 4 runs fit within 90% of 2 GB
    code, stdout, err = _cli(["run", QUICKSTART, "--out", str(out), "--no-progress",
                              "agent_config.buffer_size=10000000", "--device-memory", "2GB"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "at most 4 runs fit" in err, err
    assert not out.exists()


def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = _cli(["run", QUICKSTART, "--dry-run", "--device-memory", "80GB"], capsys)
    assert code == 0, err
    per_run = 1_230_000 + 4 * 17_410 * F32 + I32 + 17_410 * BOOL   # replay, params x2, Adam, masks
    lines = stdout.splitlines()
    assert lines[0].startswith("15 runs x 30,000 env steps of dqn on CartPole-v1")
    assert "x 15 runs" in lines[2]
    assert lines[3].split() == ["replay", "1.2", "MB", "18.4", "MB"]
    fit = int(0.9 * 80e9) // per_run  # "other" (env state, obs, key) adds tens of bytes
    assert f"the state of at most {fit:,} runs fits" in stdout or f"at most {fit - 1:,} runs fits" in stdout
    assert list(tmp_path.iterdir()) == []
    code, stdout, err = _cli(["run", QUICKSTART, "--dry-run", "--device-memory", "1GB",
                              "agent_config.buffer_size=100000000"], capsys)
    assert code == 2 and "at most 0" not in err and "not even 1 run fits" in err and list(tmp_path.iterdir()) == []


def test_sweep_checks_temporaries_and_resume_checks_again(tmp_path):
    plan = plan_sweep(tiny_sweep_config(sweep={"seed": 1, "method": ["rigl"]}))
    state = memory.estimate(plan).total_bytes
    # the state fits within 90% of this, but not with the compiled chunk's temporaries
    out, lines = tmp_path / "refused", []
    with pytest.raises(ConfigError, match="temporaries") as refused:
        sweep.run_sweep(plan, out, progress=False, log=lines.append, device_memory=int(state / 0.9) + 64)
    assert "\n" not in str(refused.value) and not out.exists()
    text = "\n".join(lines)  # logged before compiling, then with the compiled chunk's temporaries
    assert "memory of the sweep state" in text and "replay" in text
    assert lines[1].splitlines()[1].split() == ["per", "run", "x", "1", "run"]
    assert text.index("memory of the sweep state") < text.index("compiled in") < text.index("its temporaries take")

    # a sweep killed before its first checkpoint: resuming it re-checks and touches nothing
    out = tmp_path / "sweep"
    SweepDir(out).write_new(plan)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(ConfigError, match="memory: 1 run needs"):
        sweep.run_sweep(plan, out, resume=True, progress=False, log=lambda *_: None, device_memory=1000)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.parametrize("config", [
    quickstart_like(),
    {"agent": "sac", "env": "Pendulum-v1", "total_steps": 2000, "eval_every": 1000, "eval_episodes": 2,
     "agent_config": {"hidden": [8], "buffer_size": 100, "learning_starts": 10}, "sweep": {"seed": 1}},
    {"agent": "ppo", "env": "CartPole-v1", "total_steps": 1024, "eval_every": 512, "eval_episodes": 2,
     "agent_config": {"hidden": [8], "num_envs": 2, "rollout_steps": 64, "minibatch_size": 32}, "sweep": {"seed": 1}},
], ids=["dqn", "sac", "ppo"])
def test_every_leaf_of_a_state_is_in_exactly_one_group(config):
    """Agent.state_groups partitions the state: no byte counted twice or forgotten."""
    plan = plan_sweep(config)
    shapes = jax.eval_shape(plan.agent.init, plan.keys[0], jax.tree.map(lambda x: x[0], plan.hparams))
    groups = plan.agent.state_groups(shapes)
    assert tuple(groups) == memory.CATEGORIES
    grouped = [id(x) for g in groups.values() for x in jax.tree.leaves(g)]
    assert sorted(grouped) == sorted(id(x) for x in jax.tree.leaves(shapes))
