"""The embeddable API: `make_train(config)` returns a pure `train(key, hparams)` for one run."""

from __future__ import annotations

from .config import check_defaults, build_agent, load_config, run_values
from .fields import make_hparams as _make_hparams


def make_train(config):
    """A pure function `train(key, hparams) -> (state, metrics)` for one run of `config`.

    config: a mapping or YAML path with agent, env, total_steps, eval_every, eval_episodes
    (and optionally agent_config; `sweep`/`hparams` are not used here). metrics: a dict of
    [num_evals] arrays (eval_return, actual_sparsity, active_params, dormant_frac, step, ...).
    Safe under jax.jit, jax.vmap (over keys and hparams) and jax.lax.scan; under vmap, mask
    updates run only at steps where some run updates (see sparse.batching.cond_any).
    """
    config = load_config(config)
    agent = build_agent(config)

    def train(key, hparams):
        state = agent.init(key, hparams)
        return agent.run(state, hparams, 0, agent.num_evals)

    train.agent = agent
    return train


def make_hparams(config, **values):
    """One run's hparams for `config`, by the same precedence as a sweep's runs
    (`config.run_values`): agent defaults < method defaults < config `hparams` < config
    `method_defaults` < `values`.

    Names are accepted for choices (method="rigl"); stack several with `stack_hparams`.
    """
    config = load_config(config)
    agent = build_agent(config)
    check_defaults(config, agent)
    return _make_hparams(agent.HParams, run_values(config, agent, values))
