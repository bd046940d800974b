"""Per-run sparse-training hyperparameters as a pytree of traced values.

Everything in `SparseHParams` may differ between the runs of one compiled sweep: the method
and the layer distribution are integer ids (the method's an index into the registry of
methods.py, its properties read from tables indexed by it), never Python branches.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import struct

from ..fields import hfield
from ..names import DISTRIBUTIONS, METHODS, START_MODES  # noqa: F401  (METHODS: read through here too)
from .methods import METHOD_NAMES

UNIFORM, ER, ERK = range(len(DISTRIBUTIONS))
DELAY_UPDATES, DENSE_THEN_CUT = range(len(START_MODES))
_DTYPES = {"choice": jnp.int32, "int": jnp.int32, "float": jnp.float32, "bool": jnp.bool_}


def _lookup(name, table, what: str) -> int:
    if isinstance(name, str):
        key = name.lower()
        if key not in table:
            raise ValueError(f"unknown {what} {name!r}; allowed: {', '.join(table)}")
        return table.index(key)
    return name  # already an id (possibly traced)


def method_id(name):
    """Integer id of a registered method's name ('rigl' -> 4); ids pass through unchanged."""
    return _lookup(name, METHOD_NAMES, "method")


def distribution_id(name):
    """Integer id of a distribution name ('erk' -> 2); ids pass through unchanged."""
    return _lookup(name, DISTRIBUTIONS, "distribution")


def start_mode_id(name):
    """Integer id of a start mode ('dense_then_cut' -> 1); ids pass through unchanged."""
    return _lookup(name, START_MODES, "start mode")


@struct.dataclass
class SparseHParams:
    """Traced per-run settings of the sparse-training method (the one declaration; agents'
    HParams extend it). Steps (`update_interval`, `start`, `end`) count optimizer steps, as
    in the papers' code.

    - method: id of a registered method (methods.py: the built-ins of METHODS, then others).
    - sparsity: global target fraction of zero kernel weights, in [0, 1).
    - distribution: id into DISTRIBUTIONS (how the target is shared among layers).
    - drop_fraction: SET/RigL initial drop fraction f0 of the cosine schedule.
    - update_interval: steps between mask updates (SET/RigL/prune).
    - start: prune: t0 of the polynomial schedule. static/SET/RigL: see start_mode.
    - end: last step at which masks change (prune: t1); masks are frozen after it.
    - sparse_init: sparsity-aware initialisation of sparse-from-scratch layers.
    - use_bias: False puts a zero mask on every bias.
    - start_mode: id into START_MODES. delay_updates: the mask is sparse from initialisation
      and SET/RigL change it from `start` on; dense_then_cut: dense until `start`, then a
      one-off magnitude cut. The same when start == 0.
    - skip_gradient: on a step where the mask changes, the mask update takes the place of the
      gradient step (rigl's RigL optimizer, JaxPruner's SET/RigL); False: the mask changes,
      then the gradient is applied under the new mask (rigl's TF-Agents trainers).
    """

    method: jnp.ndarray = hfield("choice", "dense", "sparse-training method", choices=METHOD_NAMES)
    sparsity: jnp.ndarray = hfield("float", 0.9, "global target fraction of zero kernel weights",
                                   low=0.0, high=1.0, high_open=True)
    distribution: jnp.ndarray = hfield("choice", "erk", "layer distribution", choices=DISTRIBUTIONS)
    drop_fraction: jnp.ndarray = hfield("float", 0.5, "SET/RigL initial drop fraction", low=0.0, high=1.0)
    update_interval: jnp.ndarray = hfield("int", 1000, "optimizer steps between mask updates", low=1)
    start: jnp.ndarray = hfield("int", 0, "prune t0; static/SET/RigL: see start_mode", low=0)
    end: jnp.ndarray = hfield("int", 75_000, "last optimizer step at which masks change", low=0)
    sparse_init: jnp.ndarray = hfield("bool", True, "sparsity-aware initialisation")
    use_bias: jnp.ndarray = hfield("bool", True, "False puts a zero mask on every bias")
    start_mode: jnp.ndarray = hfield(
        "choice", "delay_updates", "static/SET/RigL with start > 0: delay_updates (sparse from init, "
        "topology updates from start; JaxPruner) or dense_then_cut (dense until start, then a "
        "magnitude cut)", choices=START_MODES)
    skip_gradient: jnp.ndarray = hfield(
        "bool", False, "on a mask-update step, update the mask instead of applying the gradient "
        "(rigl's RigL optimizer, JaxPruner's SET/RigL); false: update, then apply (rigl's TF-Agents code)")

    @classmethod
    def make(cls, *args, **values):
        """Build from Python values or names: ``make("rigl", 0.8, drop_fraction=0.3)``; also
        ``DQNHParams.make(...)`` for an agent's hparams. Positional arguments follow the field
        order; a field not given takes the default its declaration states. Every value is
        checked as a config value is (`fields.Field`: range, choices, finiteness; ConfigError,
        a ValueError, naming the field); arrays are checked value by value, traced ones pass
        through unchecked."""
        fields = dataclasses.fields(cls)
        if len(args) > len(fields):
            raise TypeError(f"make() takes at most {len(fields)} positional arguments")
        given = dict(zip((f.name for f in fields), args))
        twice = sorted(set(given) & set(values))
        unknown = sorted(set(values) - {f.name for f in fields})
        if twice or unknown:
            raise TypeError(f"make() got {'multiple values for' if twice else 'an unexpected argument'} "
                            f"{(twice or unknown)[0]!r}")
        given.update(values)
        out = {}
        for f in fields:
            spec = f.metadata["hparam"]
            value = given.get(f.name, spec.default)
            if isinstance(value, (str, bool, int, float, type(None))) and not (
                    spec.kind == "choice" and isinstance(value, int) and not isinstance(value, bool)):
                value = spec.convert(f.name, value)  # a Python value or a name
            else:
                spec.check(f.name, value)  # an array, a numpy scalar or a choice's id
            out[f.name] = jnp.asarray(value, _DTYPES[spec.kind])
        return cls(**out)

    def sparse(self, sparsity=None) -> "SparseHParams":
        """Just the sparse settings of these hparams (an agent's HParams carries more), optionally
        with another sparsity (e.g. per network)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(SparseHParams)}
        if sparsity is not None:
            values["sparsity"] = sparsity
        return SparseHParams(**values)
