"""Shared fixtures and helpers: tiny networks so every test compiles and runs in seconds on 2 CPU
cores, synthetic sweep directories, and checks more than one test file uses."""

import itertools
import os
import struct
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml
from jax.experimental.compilation_cache import compilation_cache

import purejaxsparse as pjs
from purejaxsparse.analysis.report import write_report
from purejaxsparse.store import SweepCheckpoints
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
    hps = pjs.stack_hparams([train.hparams(**run) for run in runs])
    keys = jax.random.split(jax.random.PRNGKey(seed), len(runs))
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    return train, hps, state, jax.device_get(metrics)


@pytest.fixture(scope="session")
def compile_cache_dir(tmp_path_factory):
    """One directory for JAX's persistent compilation cache, shared by pytest-xdist's workers."""
    base = tmp_path_factory.getbasetemp()
    cache_dir = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "xla_cache"
    cache_dir.mkdir(exist_ok=True)
    return cache_dir


@pytest.fixture(scope="module")
def compile_cache(compile_cache_dir):
    """JAX's persistent compilation cache while a module's tests run, for this process and
    (through the environment) every subprocess they start: modules whose tests build the same
    small program again and again (a tiny sweep's chunk; a run, its kill and its resume) compile
    it once. Opt in with `pytestmark = pytest.mark.usefixtures("compile_cache")`. XLA's cache
    key covers the program and its compile options, and an identical program gives an identical
    executable, so this only saves time. A size limit turns on JAX's file lock (filelock), so no
    process reads an entry another is still writing; programs that compile in under a second
    are not cached (JAX's default)."""
    settings = {"jax_compilation_cache_dir": str(compile_cache_dir), "jax_compilation_cache_max_size": 2**32}
    before = {name: (getattr(jax.config, name), os.environ.get(name.upper())) for name in settings}
    compilation_cache.reset_cache()
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)
    yield compile_cache_dir
    for name, (value, env) in before.items():
        jax.config.update(name, value)
        if env is None:
            os.environ.pop(name.upper(), None)
        else:
            os.environ[name.upper()] = env
    compilation_cache.reset_cache()


# -- synthetic sweep directories (no training) ---------------------------------------------
def _level(method: str, sparsity: float, use_bias: bool) -> float:
    """Synthetic 'true' final return of a method at a sparsity (dense ~ 400)."""
    drop = {"dense": 0.0, "dense_width": 250.0, "static": 220.0, "set": 150.0, "rigl": 120.0, "prune": 80.0}[method]
    return 400.0 - drop * sparsity**3 - (0 if use_bias else 30.0 * sparsity)


_DORMANT = {"dense": 0.0, "dense_width": 0.1, "static": 0.4, "set": 0.25, "rigl": 0.15, "prune": 0.3}


def write_sweep(
    d: Path,
    envs=("CartPole-v1",),
    methods=("dense", "static", "rigl"),
    sparsities=(0.5, 0.9),
    seeds=4,
    total_steps=20_000,
    eval_every=1000,
    use_bias=None,
    n_evals=None,
    noise=20.0,
    returns=None,
    extra_hparams=None,
    rng_seed=0,
    trailing="",
) -> Path:
    """Write config.yaml, runs.csv and results.csv of a synthetic sweep into ``d``.

    ``n_evals``: {run id: number of evaluations it has} to simulate an unfinished sweep.
    ``returns``: {run id: array of eval returns} to force exact values.
    ``trailing``: raw text appended to results.csv (e.g. a partial line).
    """
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng_seed)
    sweep = {"method": list(methods), "sparsity": list(sparsities), "seed": seeds}
    if use_bias is not None:
        sweep["use_bias"] = list(use_bias)
    for k, v in (extra_hparams or {}).items():
        sweep[k] = list(v)
    config = {
        "agent": "dqn", "env": {"name": envs[0]} if len(envs) == 1 else list(envs),
        "total_steps": total_steps, "eval_every": eval_every, "eval_episodes": 10, "sweep": sweep,
    }
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    runs, rows = [], []
    n_full = total_steps // eval_every
    rid = 0
    for env in envs:
        for method in methods:
            for sp in ([0.0] if method == "dense" else sparsities):
                for ub in (use_bias if use_bias is not None else [True]):
                    for extra in _product(extra_hparams or {}):
                        for seed in range(seeds):
                            run = dict(run=rid, env=env, agent="dqn", method=method, sparsity=sp, seed=seed,
                                       use_bias=ub, drop_fraction=0.3, **extra,
                                       total_params=136_706, active_params=int(136_706 * (1 - sp)))
                            runs.append(run)
                            n = n_full if n_evals is None else n_evals.get(rid, n_full)
                            steps = eval_every * np.arange(1, n + 1)
                            if returns is not None and rid in returns:
                                ret = np.asarray(returns[rid], dtype=float)[:n]
                            else:
                                lvl = _level(method, sp, ub) + 10 * (sum(map(ord, env)) % 3)
                                ret = lvl * (1 - np.exp(-4 * steps / total_steps)) + rng.normal(0, noise, n)
                            for st_, r in zip(steps, ret):
                                rows.append(dict(run=rid, env=env, agent="dqn", method=method, sparsity=sp,
                                                 seed=seed, step=int(st_), eval_return=float(r),
                                                 actual_sparsity=sp, active_params=run["active_params"],
                                                 dormant_frac=float(np.clip(0.05 + (0.1 + _DORMANT[method]) * sp * st_ / total_steps
                                                                            + (0 if ub else 0.1), 0, 1))))
                            rid += 1
    pd.DataFrame(runs).to_csv(d / "runs.csv", index=False)
    res = pd.DataFrame(rows, columns=["run", "env", "agent", "method", "sparsity", "seed", "step", "eval_return",
                                      "actual_sparsity", "active_params", "dormant_frac"])
    res.to_csv(d / "results.csv", index=False)
    if trailing:
        with open(d / "results.csv", "a") as f:
            f.write(trailing)
    return d


def _product(grid: dict):
    if not grid:
        yield {}
        return
    keys = list(grid)
    for vals in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, vals))


# -- checks and helpers of more than one test file -----------------------------------------
NETWORK_FINALS = ("final_actual_sparsity_actor", "final_actual_sparsity_critic",
                  "final_dormant_frac_actor", "final_dormant_frac_critic")


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


def checkpointed_state(out_dir, plan):
    """The batched state of the sweep's newest checkpoint, as numpy arrays (runs first)."""
    like = jax.eval_shape(jax.vmap(plan.agent.init), plan.keys, plan.hparams)
    like = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), like)
    ckpt = SweepCheckpoints(out_dir / "checkpoints")
    try:
        return jax.device_get(ckpt.restore(ckpt.latest(), like))
    finally:
        ckpt.close()


def mlp_np(params, x):
    """ReLU MLP forward pass in float64 numpy (layer_0 .. layer_L, the last one linear)."""
    layers = params["params"]
    h = np.asarray(x, np.float64)
    for i in range(len(layers)):
        layer = layers[f"layer_{i}"]
        h = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        h = np.maximum(h, 0.0) if i < len(layers) - 1 else h
    return h
