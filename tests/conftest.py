"""Shared fixtures: tiny networks so every test compiles and runs in seconds on 2 CPU cores."""

import jax
import jax.numpy as jnp
import pytest

import purejaxsparse as pjs
from purejaxsparse.nets import MLP
from purejaxsparse.sparse import SparseSpec


@pytest.fixture(scope="session")
def tiny_mlp():
    """(module, params, spec) of a 6 -> 32 -> 32 -> 3 ReLU MLP."""
    net = MLP(hidden=(32, 32), out_dim=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
    return net, params, SparseSpec.from_params(params)


def tiny_sweep_config(**overrides):
    """A DQN sweep small enough to compile and run in seconds (6 runs, 6 evaluations)."""
    config = {
        "name": "tiny", "agent": "dqn", "env": {"name": "CartPole-v1", "max_steps_in_episode": 100},
        "total_steps": 1200, "eval_every": 200, "eval_episodes": 3, "chunk_evals": 2,
        "agent_config": {"hidden": [16, 16], "batch_size": 16, "buffer_size": 500, "learning_starts": 100},
        "hparams": {"update_interval": 50, "end": 900, "sparsity": 0.8},
        "method_defaults": {"prune": {"start": 200}},
        "sweep": {"seed": 2, "method": ["dense", "rigl", "prune"]},
    }
    config.update(overrides)
    return config


def train_runs(config: dict, runs: list[dict], seed: int = 0):
    """Train `runs` (make_hparams keyword dicts) of `config` as one vmapped, jitted program,
    the README's embedding API: (train, stacked hparams, final state, metrics on the host)."""
    train = pjs.make_train(config)
    hps = pjs.stack_hparams([pjs.make_hparams(config, **run) for run in runs])
    keys = jax.random.split(jax.random.PRNGKey(seed), len(runs))
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    return train, hps, state, jax.device_get(metrics)
