"""One precedence rule for a run's hyperparameters, shared by the sweep planner and make_hparams."""

import numpy as np
import pytest
import yaml

import purejaxsparse as pjs
from purejaxsparse.config import load_config, plan_sweep
from purejaxsparse.fields import ConfigError, describe

from conftest import tiny_sweep_config


def test_make_hparams_equals_the_planned_run_for_every_spelling_of_the_method():
    config = tiny_sweep_config(sweep={"seed": 1, "method": ["dense", "static", "set", "rigl", "prune"]},
                               method_defaults={"prune": {"start": 200}, "rigl": {"drop_fraction": 0.1}})
    plan = plan_sweep(config)
    planned = {r["method"]: r for r in plan.runs}
    for method in planned:
        for spelling in (method, method.upper(), method.capitalize()):
            got = describe(pjs.make_hparams(config, method=spelling))
            want = {k: v for k, v in planned[method].items() if k not in ("run", "seed")}
            assert got == want, (spelling, got, want)
    # the layers of the rule, read off by hand: the config's method_defaults beat its hparams
    # (prune start 200 over hparams start 0), which beat the agent's own (prune start 20000);
    # drop fraction and start mode do not apply to pruning: back to their declared defaults
    dqn = {"distribution": "erk", "update_interval": 50, "end": 900, "sparse_init": True, "use_bias": True,
           "skip_gradient": False, "learning_rate": 1e-3, "adam_eps": 1e-7, "gamma": 0.99, "epsilon": 0.01,
           "eval_epsilon": 0.0, "target_update_every": 100, "weight_decay": 1e-6, "huber": False,
           "epsilon_decay_steps": 0, "reward_clip": False, "start_mode": "delay_updates",
           "redo_every": 0, "redo_tau": 0.1}
    hand = {"rigl": {**dqn, "method": "rigl", "sparsity": 0.8, "drop_fraction": 0.1, "start": 0},
            "prune": {**dqn, "method": "prune", "sparsity": 0.8, "drop_fraction": 0.5, "start": 200}}
    for method, want in hand.items():
        got = {k: v for k, v in planned[method].items() if k not in ("run", "seed")}
        assert got == pytest.approx(want), method
    # arguments beat everything; settings that do not apply to a method are reset
    assert describe(pjs.make_hparams(config, method="Prune", start=300))["start"] == 300
    assert describe(pjs.make_hparams(config, method="dense"))["sparsity"] == 0.0
    with pytest.raises(ConfigError, match="method: got 'lottery'"):
        pjs.make_hparams(config, method="lottery")


# Methods whose original code updates the mask instead of applying the gradient on a mask-update
# step: rigl's Atari code (sparse_optimizers_base.py: the RigL optimizer only; SET applies) and
# JaxPruner (SET/RigL skip_gradients=True, magnitude pruning False). rigl's TF-Agents trainers
# (classic control, MuJoCo) always apply.
SKIPS_GRADIENT = {"dqn_atari_nature": {"rigl"}, "dqn_atari_impala": {"rigl"}, "quick/dqn_atari_pong": {"rigl"},
                  "dqn_atari_ganaie": {"rigl", "set"}, "quick/dqn_atari_ganaie": {"rigl", "set"},
                  "minatar_ganaie": {"rigl", "set"}, "quick/minatar_breakout": {"rigl", "set"}}


def test_every_shipped_config_plans():
    """Every YAML in configs/ (the quickstart, the papers' sweeps, the quick ones) plans, its
    resolved config.yaml plans the same runs again (what `resume` relies on), and its
    mask-update steps treat the gradient as the code of its study did."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "configs"
    paths = sorted(root.glob("*.yaml")) + sorted(root.glob("quick/*.yaml"))
    assert len(paths) >= 15
    for path in paths:
        plan = plan_sweep(load_config(path))
        assert plan.runs, path
        assert plan_sweep(yaml.safe_load(yaml.safe_dump(plan.config, sort_keys=False))).runs == plan.runs, path
        assert np.all(np.asarray(plan.hparams.method) >= 0)
        skips = SKIPS_GRADIENT.get(str(path.relative_to(root).with_suffix("")), set())
        for run in plan.runs:
            assert run["skip_gradient"] == (run["method"] in skips), (path.name, run["method"])
