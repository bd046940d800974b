"""Sparse-training methods as declarations, and the registry that numbers them.

A method is data (`Method`): its initial mask, when its mask changes, whether it swaps part of
its weights at an update, the scores that pick which weights stay and which grow, and its
defaults. The traced rule (`updaters.update_masks`) is one drop-then-grow step for every method:
a run's `hp.method` is a traced index into the registry, and each property a run needs is a
small constant table indexed by it (`per_method`), so runs of different methods share one
compiled program. The six built-ins come first, in the order of `names.METHODS` (their ids);
`register_method` appends a method defined anywhere, which configs then name like a built-in.

Scores are functions `(weights, grads, key) -> score` of one kernel (same shape): weights are
the masked kernel, grads its dense gradient on the current batch, key this layer's key at this
update. Higher scores are kept (drop) or grown (grow); ties go to the lower flat index, NaN ranks
lowest. Each distinct score function is computed once per layer and update, whatever the number
of methods using it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Sequence
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from ..names import METHODS

Score = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

INITS = ("dense", "sparse", "width")
"""Initial masks: dense (all on); sparse (each layer a uniformly random mask of its target count,
from the run's key; with start_mode dense_then_cut and start > 0, dense until a one-off magnitude
cut to that count at `start`); width (param-matched dense: whole hidden units off, dense_width)."""

SCHEDULES = ("never", "interval", "polynomial")
"""When the mask changes after initialisation (apart from the cut of a sparse start):
never; interval (steps start + k * update_interval up to end, keeping the layer's count: SET,
RigL); polynomial (update steps in (start, end], each layer pruned to the polynomial schedule's
count at that step, end included even off the interval grid: gradual pruning)."""

SPARSITY_LEVELS = ("sparsity", "actor_sparsity", "critic_sparsity", "actor_param_fraction")
"""Hyperparameters that set how sparse a network gets (the agents' per-network ones too)."""


def magnitude_score(weights, grads, key):
    """|w|: keep the largest weights (every built-in's drop score)."""
    return jnp.abs(weights)


def gradient_score(weights, grads, key):
    """|dL/dw| of the dense gradient: grow where the loss would fall fastest (RigL)."""
    return jnp.abs(grads).astype(jnp.float32)


def random_score(weights, grads, key):
    """Uniform [0, 1) noise: grow at random (SET)."""
    return jax.random.uniform(key, weights.shape)


@dataclasses.dataclass(frozen=True)
class Method:
    """One sparse-training method.

    name: its name in configs (lower case: config values are matched lower-cased).
    init: one of INITS. schedule: one of SCHEDULES.
    regrow: at each scheduled update, swap the fraction f(t) (the cosine drop fraction of
      `drop_fraction`, docs/reference.md) of the layer's count: the count minus
      floor(f(t) count) weights with the highest `drop` scores stay, and floor(f(t) count) of
      the rest with the highest `grow` scores are switched on. Without it an update only keeps
      (prunes to) the count by the `drop` score.
    drop, grow: score functions (module docstring).
    defaults: the method's own defaults of hyperparameters (e.g. skip_gradient), checked
      against the agent's when a config is planned; an agent's method_defaults and a config's
      hparams and method_defaults override them.

    Which hyperparameters apply (`applies`) and whether a run ends sparse (`ends_sparse`)
    follow from these fields.
    """

    name: str
    init: str = "dense"
    schedule: str = "never"
    regrow: bool = False
    drop: Score = magnitude_score
    grow: Score = random_score
    defaults: Mapping[str, Any] = ()

    def __post_init__(self):
        try:  # stored as sorted (name, value) pairs: hashable, so the registry can key jit caches
            defaults = tuple(sorted(dict(self.defaults).items()))
            hash(defaults)
        except (TypeError, ValueError):
            raise ValueError(f"Method {self.name!r}: defaults {self.defaults!r}; allowed: a mapping from "
                             f"hyperparameter names to numbers, booleans or names") from None
        object.__setattr__(self, "defaults", defaults)
        bad = _problem(self)
        if bad:
            raise ValueError(f"Method {self.name!r}: {bad}")

    @property
    def ends_sparse(self) -> bool:
        """Whether a run ends with each layer at its target count (init sparse, or pruned)."""
        return self.init == "sparse" or self.schedule == "polynomial"

    def applies(self, hparam: str) -> bool:
        """Whether the hyperparameter `hparam` can change what a run of this method does
        (configs reset those that cannot, so runs differing only there are one run)."""
        updates = self.schedule != "never"
        mask_changes = updates or self.init == "sparse"
        rules = {
            "distribution": self.ends_sparse,
            "drop_fraction": self.regrow,
            "update_interval": updates,
            "end": updates,
            "start": mask_changes,
            "skip_gradient": mask_changes,
            "sparse_init": self.init == "sparse",
            "start_mode": self.init == "sparse",
            **{name: self.init != "dense" or updates for name in SPARSITY_LEVELS},
        }
        return rules.get(hparam, True)


def _problem(m: Method) -> str:
    """What is wrong with a declaration ('' if nothing)."""
    if not isinstance(m.name, str) or not m.name.isidentifier() or m.name != m.name.lower():
        return "name: a lower-case identifier (letters, digits, _), as configs name it"
    if m.init not in INITS:
        return f"init {m.init!r}; allowed: {', '.join(INITS)}"
    if m.schedule not in SCHEDULES:
        return f"schedule {m.schedule!r}; allowed: {', '.join(SCHEDULES)}"
    if not isinstance(m.regrow, bool):
        return f"regrow {m.regrow!r}; allowed: True or False"
    if not (callable(m.drop) and callable(m.grow)):
        return "drop and grow: score functions (weights, grads, key) -> score"
    if m.init == "width" and m.schedule != "never":
        return "a width (param-matched dense) mask never changes; allowed schedule: never"
    if m.init == "dense" and m.schedule == "interval":
        return "interval updates keep the layer's count, so a dense start stays dense; use init 'sparse'"
    if m.init == "sparse" and m.schedule == "polynomial":
        return "polynomial pruning starts dense (a sparse start is already at its final count); use init 'dense'"
    if m.regrow and m.schedule == "never":
        return "regrow swaps weights at scheduled updates; allowed schedules with it: interval, polynomial"
    if m.schedule == "interval" and not m.regrow:
        return "interval updates keep the layer's count, so without regrow they change nothing; set regrow=True"
    if not all(isinstance(k, str) and k != "method" for k, _ in m.defaults):
        return "defaults: a mapping from hyperparameter names (not 'method') to values"
    return ""


BUILT_IN = (
    Method("dense"),
    Method("dense_width", init="width"),
    Method("static", init="sparse"),
    Method("set", init="sparse", schedule="interval", regrow=True, grow=random_score),
    Method("rigl", init="sparse", schedule="interval", regrow=True, grow=gradient_score),
    Method("prune", schedule="polynomial"),
)
assert tuple(m.name for m in BUILT_IN) == METHODS  # ids are the built-in order
_registry: tuple[Method, ...] = BUILT_IN


def registered() -> tuple[Method, ...]:
    """Every method in id order: the built-ins, then the registered ones (a hashable snapshot)."""
    return _registry


def register_method(method: Method) -> int:
    """Add `method` after those registered so far; returns its id. Configs then name it in
    `sweep.method`, `hparams.method` and `method_defaults` like a built-in. Programs compiled
    before are not reused for calls after (`jit_with_registry`). ValueError on a name already
    registered or a score that does not map a kernel to a score of its shape."""
    global _registry
    if not isinstance(method, Method):
        raise ValueError(f"register_method: got {type(method).__name__}; allowed: a Method")
    if method.name in method_names():
        raise ValueError(f"method {method.name!r} is already registered; allowed: a new name "
                         f"(registered: {', '.join(method_names())})")
    weights = jax.ShapeDtypeStruct((3, 2), jnp.float32)
    for role in ("drop", "grow"):
        try:
            out = jax.eval_shape(getattr(method, role), weights, weights, jax.random.PRNGKey(0))
        except Exception as e:  # noqa: BLE001  (any failure of user code: report it as a bad declaration)
            raise ValueError(f"Method {method.name!r}: {role} score fails on a (3, 2) kernel: {e}") from e
        if getattr(out, "shape", None) != weights.shape:
            raise ValueError(f"Method {method.name!r}: {role} score gives {getattr(out, 'shape', out)} for a "
                             f"(3, 2) kernel; allowed: one score per weight, the kernel's shape")
    _registry = _registry + (method,)
    return len(_registry) - 1


def method_names() -> tuple[str, ...]:
    """Names of every registered method, in id order."""
    return tuple(m.name for m in _registry)


def get_method(name: str) -> Method:
    """The declaration of a registered method (KeyError if none has that name)."""
    for m in _registry:
        if m.name == name:
            return m
    raise KeyError(name)


class _LiveNames(Sequence):
    """The registered names, read at each use: the choices of the `method` hyperparameter, so a
    method registered after SparseHParams was defined is accepted too."""

    def __getitem__(self, i):
        return method_names()[i]

    def __len__(self):
        return len(_registry)

    def __repr__(self):
        return repr(method_names())


METHOD_NAMES = _LiveNames()


def per_method(method_id, value_of: Callable[[Method], Any]) -> jax.Array:
    """`value_of(declaration)` of the (traced) method id: a constant table over the registry,
    indexed by the id, so one program serves every method."""
    return jnp.asarray([value_of(m) for m in _registry])[method_id]


def distinct(functions) -> list:
    """`functions` without repeats, in first-seen order."""
    return list(dict.fromkeys(functions))


def jit_with_registry(static_argnames=("spec",)):
    """jax.jit for a function whose trace reads the registry (`per_method`): the registry
    snapshot joins its static arguments (as the keyword `registry`), so a call after
    `register_method` compiles anew instead of reusing a program with the old tables."""
    static = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)

    def decorate(fn):
        def traced(*args, registry, **kwargs):  # registry: the cache key; the trace reads `_registry`
            return fn(*args, **kwargs)

        functools.update_wrapper(traced, fn)
        sig = inspect.signature(fn)
        traced.__signature__ = sig.replace(parameters=[
            *sig.parameters.values(), inspect.Parameter("registry", inspect.Parameter.KEYWORD_ONLY)])
        jitted = jax.jit(traced, static_argnames=(*static, "registry"))

        @functools.wraps(fn)
        def call(*args, **kwargs):
            return jitted(*args, registry=registered(), **kwargs)

        return call

    return decorate
