"""What every agent shares: the eval-period loop, its lengths and the health check (`Agent`,
which declares the contract of contract.py).

An agent is built from static settings (shapes, loop lengths) and runs one training run as a
pure function of (key, hparams), hparams traced. The loop is

    for each evaluation:  scan `iteration` over eval_every transitions, then `evaluate`

with the iteration counter `t` carried *outside* the runs axis (it is the same for all runs),
so under `jax.vmap` everything keyed on it (replay writes, warm-up, eval cadence) stays
unbatched and cheap. `run` advances a state by some evaluations: the sweep engine calls it per
chunk; `make_train` calls it once for the whole run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from .. import envs

from .contract import AgentContract


METRICS = ("eval_return", "actual_sparsity", "active_params", "dormant_frac", "finite")
"""Per-evaluation metrics every agent reports (results.csv columns)."""

DIVERGED_ABS = 1e8
"""A run has diverged when a parameter is non-finite or larger than this in magnitude (healthy
RL networks stay within ~1e3; blown-up ones go on to inf/NaN within a few updates)."""


STATE_GROUPS = ("replay", "params", "optimizer", "masks", "other")
"""What an agent's state holds, as `Agent.state_groups` names it (memory estimates, health check)."""


def width_field():
    """The `width` static setting of every agent: a multiplier of its networks' widths
    (nets/width.py; which layers each network scales is the network's own). Width 1 is the
    network as the original builds it."""
    return dataclasses.field(default=1.0, metadata={"min": 0.0, "min_open": True})


def params_finite(params) -> jax.Array:
    """Whether every parameter is finite and below DIVERGED_ABS in magnitude: a run whose loss
    went NaN/inf shows it in its params."""
    ok = jnp.bool_(True)
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            ok = ok & jnp.all(jnp.abs(leaf) < DIVERGED_ABS)  # False for NaN and inf too
    return ok


def sparse_groups(*states) -> dict:
    """The "optimizer" and "masks" groups of some sparse optimizer states (sparse.SparseState)."""
    return {"optimizer": [(s.inner_state, s.count) for s in states], "masks": [s.masks for s in states]}


class Agent(AgentContract):
    """Base class of the agents: what they share of `AgentContract` (contract.py, which says what
    each member is for). Subclasses set `name`, `HParams`, `Static`, `method_defaults` and
    implement its abstract methods (and `transitions_per_iteration` when one iteration is not one
    step of every env); an agent that leaves one out cannot be built (TypeError)."""

    name: str = ""
    HParams: type = None
    Static: type = None
    method_defaults: dict = {}
    extra_metrics: tuple[str, ...] = ()

    def __init__(self, env, static, eval_env, total_steps: int, eval_every: int, eval_episodes: int):
        self.env, self.static, self.eval_env = env, static, eval_env
        self.total_steps, self.eval_every, self.eval_episodes = total_steps, eval_every, eval_episodes

    @property
    def transitions_per_iteration(self) -> int:
        return self.env.num_envs

    def resume_episodes(self, state, key: jax.Array):
        """As built, the state is returned unchanged; agents that run on envs whose state lives
        outside JAX restart their episodes here."""
        return state

    # -- shared -------------------------------------------------------------------------------
    def evaluation_returns(self, state, hp, key, episodes: int | None = None, obs_noise_std=0.0):
        """Returns [episodes] of the evaluation policy on fresh eval envs (first episode each),
        with N(0, obs_noise_std) noise on the observations the policy sees (robustness)."""
        return envs.evaluate(self.eval_env, self.eval_policy(state, hp), key,  # batches its own envs
                             episodes or self.eval_episodes, obs_noise_std)

    @property
    def num_evals(self) -> int:
        return self.total_steps // self.eval_every

    @property
    def iterations_per_eval(self) -> int:
        return self.eval_every // self.transitions_per_iteration

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRICS + tuple(self.extra_metrics)

    def total_params(self) -> int:
        """Parameter count of the full dense networks (kernels, biases, others)."""
        return sum(net.spec.num_params for net in self.networks().values())

    def run(self, state, hp, t0, num_evals: int):
        """Advance `num_evals` evaluation periods from iteration `t0`.

        Returns (state, metrics): each metric [num_evals], plus "step" (transitions done at each
        evaluation). Pure; t0 may be traced (one compiled program serves every chunk).
        """

        def period(carry, _):
            def body(c, _):
                s, t = c
                return (self.iteration(s, hp, t), t + 1), None

            (s, t), _ = jax.lax.scan(body, carry, None, length=self.iterations_per_eval)
            key, k_eval = jax.random.split(s.key)
            s = s.replace(key=key)
            metrics = self.evaluate(s, hp, k_eval, t)
            metrics["finite"] = params_finite(self.state_groups(s)["params"])
            metrics["step"] = t * self.transitions_per_iteration
            return (s, t), metrics

        (state, _), metrics = jax.lax.scan(period, (state, jnp.asarray(t0, jnp.int32)), None,
                                           length=num_evals)
        return state, metrics
