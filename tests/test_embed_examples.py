"""The embedding API: the example runs as a user runs it (a fresh process) and prints one finite
final return per run (seeds x settings); a `Train` builds its agent once and traces under vmap
and scan."""

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import purejaxsparse as pjs
from purejaxsparse import train as train_module

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embed_make_train.py"


def test_embed_make_train_prints_one_finite_return_per_run():
    seeds = 2
    out = subprocess.run([sys.executable, str(EXAMPLE), "--seeds", str(seeds), "--total-steps", "400"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    runs = re.findall(r"^run (\d+): (.+), seed (\d+): final eval return (\S+)$", out, re.M)
    assert [int(r) for r, *_ in runs] == list(range(2 * seeds)), out
    assert [(setting, int(seed)) for _, setting, seed, _ in runs] == [
        (setting, seed) for setting in ("method=dense", "method=rigl, sparsity=0.9") for seed in range(seeds)]
    assert all(math.isfinite(float(ret)) for *_, ret in runs), out
    assert out.startswith("dqn on CartPole-v1: ") and "4 evaluations per run" in out


def test_a_train_builds_its_agent_once_and_traces_under_vmap_and_scan(monkeypatch):
    built, real = [], train_module.build_agent
    monkeypatch.setattr(train_module, "build_agent", lambda config: built.append(1) or real(config))
    config = {"agent": "dqn", "env": "CartPole-v1", "total_steps": 40, "eval_every": 20, "eval_episodes": 1,
              "agent_config": {"hidden": [8], "batch_size": 4, "buffer_size": 50, "learning_starts": 10},
              "method_defaults": {"prune": {"start": 5}}}
    train = pjs.make_train(config)
    hps = pjs.stack_hparams([train.hparams(method=m) for m in ("dense", "rigl", "prune")])
    assert len(built) == 1 and train.config == config and train.config is not config
    assert list(hps.start) == [0, 0, 5]  # the config's method_defaults, as a sweep's runs get them
    with pytest.raises(dataclasses.FrozenInstanceError):
        train.agent = None
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    _, metrics = jax.eval_shape(jax.vmap(train), keys, hps)
    assert metrics["eval_return"].shape == (3, 2)
    one = jax.tree.map(lambda x: x[0], hps)
    _, returns = jax.eval_shape(lambda ks: jax.lax.scan(lambda c, k: (c, train(k, one)[1]["eval_return"]), 0, ks),
                                keys)
    assert returns.shape == (3, 2)
