"""Observation-noise robustness (Graesser et al. 2022, Fig 6) of a finished sweep.

Each run's final parameters (the sweep's newest readable checkpoint) are evaluated with Gaussian
noise N(0, sigma) added to the observations the policy sees, at evaluation only (on raw 0..255
values for pixel observations). Every sigma uses the same episodes (same keys), so differences come
from the noise alone. The table goes to DIR/report/robustness.csv and the sweep's report page is
rewritten, so index.html shows robustness.png at once.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .analysis.report import write_report
from .fields import ConfigError
from .results import SWEEP_FILES, env_name, write_csv
from .store import SweepDir


def run_robustness(out_dir, sigmas, episodes: int | None = None, log=print) -> Path:
    """Write DIR/report/robustness.csv (run, sigma, eval_return, ...), then rewrite the sweep's
    report (index.html with robustness.png among its figures); returns the csv."""
    store = SweepDir(out_dir)
    out_dir = store.path
    plan = store.plan("robustness", needs=SWEEP_FILES)  # its report reads runs.csv and results.csv
    agent = plan.agent
    latest, states = store.restore_newest(jax.jit(jax.vmap(agent.init))(plan.keys, plan.hparams), log)
    if latest is None:
        raise ConfigError(f"robustness: {out_dir} has no checkpoint yet; let the sweep run first")
    if latest < plan.num_chunks:
        log(f"note: sweep incomplete ({latest}/{plan.num_chunks} chunks): using the latest parameters")
    episodes = episodes or agent.eval_episodes
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 0x5EED))(plan.keys)
    returns_fn = jax.jit(jax.vmap(
        lambda s, h, k, sigma: agent.evaluation_returns(s, h, k, episodes, sigma).mean(),
        in_axes=(0, 0, 0, None)))
    rows = []
    for sigma in sigmas:
        means = np.asarray(returns_fn(states, plan.hparams, keys, jnp.float32(sigma)))
        for run, mean in zip(plan.runs, means):
            rows.append([run["run"], sigma, np.float32(mean), env_name(plan.config), run["method"],
                         run["sparsity"], run["seed"]])
        log(f"sigma {sigma:g}: mean return {float(means.mean()):.2f} over {len(means)} runs")
    report = out_dir / "report"
    report.mkdir(exist_ok=True)
    path = report / "robustness.csv"
    write_csv(path, ["run", "sigma", "eval_return", "env", "method", "sparsity", "seed"], rows)
    index = write_report(out_dir)
    log(f"report: {index}" + ("" if (report / "robustness.png").is_file() else " (robustness.png not drawn: see the page)"))
    return path
