"""The embeddable API: `make_train(config)` returns a `Train`, a pure `train(key, hparams)` for
one run, with the agent it runs and the hparams of its runs."""

from __future__ import annotations

import dataclasses

from .agents import AgentContract
from .config import build_agent, check_defaults, load_config, run_values
from .fields import make_hparams as _make_hparams


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity, as jax.jit's cache wants
class Train:
    """One run of a config as a pure function: `train(key, hparams) -> (state, metrics)`.

    metrics: a dict of [num_evals] arrays (eval_return, actual_sparsity, active_params,
    dormant_frac, finite, step, ...). Safe under jax.jit, jax.vmap (over keys and hparams) and
    jax.lax.scan; under vmap, mask updates run only at steps where some run updates (see
    sparse.batching.cond_any).
    """

    config: dict
    """The config, as loaded (a copy of a mapping, or the YAML file's contents)."""
    agent: AgentContract
    """The agent `train` runs (agents/contract.py), built once from `config`."""

    def __call__(self, key, hparams):
        state = self.agent.init(key, hparams)
        return self.agent.run(state, hparams, 0, self.agent.num_evals)

    def hparams(self, **values):
        """One run's hparams, by the same precedence as a sweep's runs (`config.run_values`):
        agent defaults < method defaults < config `hparams` < config `method_defaults` <
        `values`. Names are accepted for choices (method="rigl"); stack several with
        `stack_hparams`."""
        check_defaults(self.config, self.agent)
        return _make_hparams(self.agent.HParams, run_values(self.config, self.agent, values))


def make_train(config) -> Train:
    """The `Train` of `config`: a mapping or YAML path with agent, env, total_steps, eval_every,
    eval_episodes (and optionally agent_config, hparams, method_defaults; `sweep` is not used
    here). ConfigError (one line) on a bad one."""
    config = load_config(config)
    return Train(config, build_agent(config))


def make_hparams(config, **values):
    """One run's hparams for `config`: `make_train(config).hparams(**values)` (to make several,
    build the Train once and call its `hparams`)."""
    return make_train(config).hparams(**values)
