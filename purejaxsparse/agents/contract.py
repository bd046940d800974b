"""What an agent provides, and what its state holds: the contract the rest of the package reads.

The sweep engine, `make_train`, the memory estimate, the health check, export and the
robustness evaluation use an agent only through `AgentContract`; `base.Agent` declares it and
implements the shared parts (the eval-period loop `run`, the loop lengths), and each agent
(agents/dqn.py, ppo.py, sac.py) the rest. Both protocols are runtime-checkable:
`isinstance(agent, AgentContract)`, `isinstance(state, AgentState)`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable, Protocol, runtime_checkable

import jax


@runtime_checkable
class AgentState(Protocol):
    """One run's state: a pytree (a flax struct dataclass) that the eval-period loop reads and
    renews its PRNG key in."""

    key: jax.Array
    """The run's PRNG key: each evaluation period splits its evaluation key off it."""

    def replace(self, **changes) -> AgentState:
        """A copy with some fields changed (flax.struct's `replace`)."""


@runtime_checkable
class AgentContract(Protocol):
    """An agent: built from static settings, it runs one training run as a pure function of
    (key, hparams), the hparams traced, so `jax.vmap` over runs and `jax.jit` of the whole run
    apply. hp below is one run's `HParams` (batched where a member says so)."""

    # -- what it is (class attributes) --------------------------------------------------------
    name: str
    """The agent's name in configs and csv files ("dqn")."""
    HParams: type
    """Its traced per-run hyperparameters: a flax struct dataclass of `fields.hfield`s."""
    Static: type
    """Its static settings (`agent_config`: shapes, loop lengths): a frozen dataclass."""
    method_defaults: dict
    """Per-method hyperparameter defaults of the original code ({"prune": {"start": 20_000}}),
    below a config's own (config.run_values)."""
    extra_metrics: tuple
    """Metrics it reports beyond base.METRICS (results.csv columns)."""

    # -- how it was built (instance attributes) -----------------------------------------------
    env: Any
    """The training env (envs.Env), batched over its `num_envs`."""
    eval_env: Any
    """The evaluation env, one env per evaluation episode."""
    static: Any
    """Its `Static` settings."""
    total_steps: int
    """Env transitions of one run."""
    eval_every: int
    """Env transitions between evaluations."""
    eval_episodes: int
    """Episodes per evaluation."""

    # -- loop lengths ----------------------------------------------------------------------------
    @property
    def transitions_per_iteration(self) -> int:
        """Env transitions one `iteration` takes."""

    @property
    def iterations_per_eval(self) -> int:
        """Iterations per evaluation period."""

    @property
    def num_evals(self) -> int:
        """Evaluations of one run (total_steps // eval_every): the length of its metrics."""

    @property
    def metric_names(self) -> tuple:
        """The metrics `run` reports per evaluation: base.METRICS + extra_metrics."""

    # -- one run ---------------------------------------------------------------------------------
    @abstractmethod
    def init(self, key: jax.Array, hp) -> AgentState:
        """The initial state of a run (networks, masks, optimizer, env, replay) from its key."""

    def run(self, state: AgentState, hp, t0, num_evals: int) -> tuple[AgentState, dict]:
        """Advance `num_evals` evaluation periods from iteration `t0` (may be traced): (state,
        metrics), each metric [num_evals], plus "step" (transitions done at each evaluation).
        Pure: the sweep engine calls it per chunk, `make_train` once for the whole run."""

    @abstractmethod
    def iteration(self, state: AgentState, hp, t) -> AgentState:
        """Advance one iteration (t: unbatched iteration index) and return the new state."""

    @abstractmethod
    def evaluate(self, state: AgentState, hp, key: jax.Array, t) -> dict:
        """Scalar metrics of `metric_names` but `finite` after `t` iterations."""

    @abstractmethod
    def eval_policy(self, state: AgentState, hp) -> Callable:
        """The evaluation policy of this state: a function (key, obs [B, ...]) -> action [B, ...]."""

    def evaluation_returns(self, state: AgentState, hp, key: jax.Array, episodes: int | None = None,
                           obs_noise_std=0.0) -> jax.Array:
        """Returns [episodes] of the evaluation policy on fresh eval envs, with N(0, obs_noise_std)
        noise on the observations the policy sees (robustness)."""

    def resume_episodes(self, state: AgentState, key: jax.Array) -> AgentState:
        """The state to continue from after a restore, for an env whose state lives outside JAX
        (`env.checkpointable` False: EnvPool); the sweep engine calls it only then."""

    # -- its networks ------------------------------------------------------------------------------
    @abstractmethod
    def networks(self) -> dict:
        """name -> SparseNetwork (static)."""

    def total_params(self) -> int:
        """Parameter count of the full dense networks (runs.csv)."""

    @abstractmethod
    def sparse_networks(self, hp) -> list:
        """(name, SparseNetwork, its SparseHParams) of each differently built or sparsified
        network of a run (networks that share both, e.g. twin critics, once); hp may be batched."""

    @abstractmethod
    def final_active_params(self, hp) -> jax.Array:
        """Active parameter count the run ends with (all networks); hp may be batched."""

    @abstractmethod
    def optimizer_steps(self) -> tuple[int, str]:
        """(optimizer steps one run makes, how they follow from its settings): the clock of the
        mask schedules (update_interval, start, end), counted from 0, so a schedule step beyond
        the last, n - 1, is never reached (run_checks.check_schedule refuses it)."""

    # -- its state, by part ------------------------------------------------------------------------
    @abstractmethod
    def state_groups(self, state: AgentState) -> dict:
        """The state's parts by what they hold: a dict from each of base.STATE_GROUPS to a pytree,
        every leaf of the state in exactly one ("params": every network's weights, online and
        target; "optimizer": optimizer moments and counts; "masks"; "replay"; "other"). The
        memory estimate sizes them; the health check reads "params"."""

    @abstractmethod
    def policy_inputs(self, state: AgentState) -> dict:
        """The parts of the state the evaluation policy reads: export restores only these
        leaves of a checkpoint (store.picked_by)."""

    @abstractmethod
    def policy_arrays(self, inputs: dict, hp):
        """The evaluation policy as a `policy_arrays.PolicyArrays` from `policy_inputs` of one
        run (numpy) and its hparams; ConfigError when this policy cannot be exported."""
