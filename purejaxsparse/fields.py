"""Specs of traced per-run hyperparameters: validation and conversion to array pytrees.

A hyperparameters class is a flax struct dataclass whose fields carry a `Field` spec in their
metadata (default, type, allowed range or choices): `sparse.SparseHParams` declares the sparse
ones, each agent's HParams adds its own. Every such value is traced: it may differ between the
runs of one compiled sweep. Static settings (shapes, loop lengths) live elsewhere (the agent's
static config). A leaf module: it imports nothing from purejaxsparse but errors.py.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .errors import ConfigError, first_line, shown  # noqa: F401  (ConfigError, first_line: read through here too)

INT32_MAX = int(np.iinfo(np.int32).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class Field:
    """Spec of one traced hyperparameter.

    kind: 'float' | 'int' | 'bool' | 'choice'. low/high bound the value (high_open: high
    excluded); choices: allowed names of a 'choice' field (stored as the index), a sequence
    read at each use (the `method` field's is the live list of registered methods). optional: the
    value may be null (None, "unset"), stored as -1 (agents then fall back to another field).
    A number must be finite and fit its stored int32 or float32.
    """

    kind: str
    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    low_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False

    def allowed(self) -> str:
        text = self._allowed()
        return text + " or null (unset)" if self.optional else text

    def _allowed(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        rng = f"{lo}{'-inf' if self.low is None else self.low}, {'inf' if self.high is None else self.high}{hi}"
        return f"{'an integer' if self.kind == 'int' else 'a number'} in {rng}"

    def convert(self, name: str, value) -> np.ndarray:
        """Validated numpy scalar of `value`; ConfigError naming `name` otherwise."""
        bad = ConfigError(f"{name}: got {shown(value)}; allowed: {self.allowed()}")
        if value is None and self.optional:
            return np.int32(-1) if self.kind in ("int", "choice") else np.float32(-1.0)
        if self.kind == "choice":
            if isinstance(value, str) and value.lower() in self.choices:
                return np.int32(self.choices.index(value.lower()))
            raise bad
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return np.bool_(value)
            raise bad
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad
        if self.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise bad
            value = int(value)
        value = float(value) if self.kind == "float" else value
        if isinstance(value, float) and not math.isfinite(value):
            raise bad
        if abs(value) > (INT32_MAX if self.kind == "int" else FLOAT32_MAX):  # stored as int32 / float32
            raise bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise bad
        return np.int32(value) if self.kind == "int" else np.float32(value)

    def check(self, name: str, stored) -> None:
        """Validate stored values (a scalar or an array of them, as `convert` stores them: a
        choice as its index, an unset optional as -1): each distinct value is read back to the
        value it stands for and goes through `convert`, so both paths apply one rule. Tracers
        cannot be read and are not checked. ConfigError naming `name` otherwise."""
        if isinstance(stored, jax.core.Tracer):
            return
        a = np.asarray(stored)
        for v in np.unique(a.reshape(-1)):
            self.convert(name, self._meant(name, v, a.dtype))

    def _meant(self, name: str, v, dtype) -> Any:
        """The value a stored scalar of `dtype` stands for (ConfigError if it stands for none)."""
        integral = np.issubdtype(dtype, np.integer) or (np.issubdtype(dtype, np.floating) and float(v).is_integer())
        if self.optional and not np.issubdtype(dtype, np.bool_) and float(v) == -1:
            return None
        if self.kind == "choice":
            if integral and not np.issubdtype(dtype, np.bool_) and 0 <= float(v) < len(self.choices):
                return self.choices[int(v)]
        elif self.kind == "bool":
            if np.issubdtype(dtype, np.bool_):
                return bool(v)
        elif np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
            return int(v) if np.issubdtype(dtype, np.integer) else float(str(v))  # float32's shortest text
        raise ConfigError(f"{name}: got {shown(v.item())}; allowed: {self.allowed()}")

    def name_of(self, stored) -> Any:
        """Human value of a stored scalar (choice index -> name, unset optional -> None)."""
        if self.optional and float(stored) < 0:
            return None
        if self.kind == "choice":
            return self.choices[int(stored)]
        if self.kind == "bool":
            return bool(stored)
        if self.kind == "int":
            return int(stored)
        return float(str(np.float32(stored)))  # shortest float32 text: 1e-3, not 0.0010000000474974513


def hfield(kind: str, default, doc: str = "", **spec):
    """A dataclass field carrying its `Field` spec (no dataclass default: build via `make`)."""
    return struct.field(metadata={"hparam": Field(kind, default, doc, **spec)})


def field_specs(cls) -> dict[str, Field]:
    """name -> Field of an hparams dataclass, in declaration order."""
    return {f.name: f.metadata["hparam"] for f in dataclasses.fields(cls)}


def make_hparams(cls, values: dict | None = None, **overrides):
    """One run's hparams instance of `cls` from defaults updated by `values`/`overrides`.

    Values are Python values or names (validated, ConfigError on a bad one); the result holds
    numpy scalars, so it can be stacked, vmapped and traced.
    """
    specs = field_specs(cls)
    merged = {**(values or {}), **overrides}
    unknown = sorted(set(merged) - set(specs))
    if unknown:
        raise ConfigError(f"hparams.{unknown[0]}: unknown hyperparameter; allowed: {', '.join(specs)}")
    out = {}
    for name, spec in specs.items():
        out[name] = spec.convert(name, merged.get(name, spec.default))
    return cls(**out)


def stack_hparams(items: Iterable) -> Any:
    """Stack per-run hparams into one batched pytree (leading runs axis), each field's values
    validated as `make_hparams` validates them (`Field.check`; ConfigError naming the field)."""
    items = list(items)
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *items)
    if dataclasses.is_dataclass(stacked):
        for f in dataclasses.fields(stacked):
            if "hparam" in f.metadata:
                f.metadata["hparam"].check(f.name, getattr(stacked, f.name))
    return jax.tree.map(jnp.asarray, stacked)


def describe(hp, run: int | None = None) -> dict[str, Any]:
    """Human values (names for choices) of one run of an hparams pytree."""
    out = {}
    for name, spec in field_specs(type(hp)).items():
        v = np.asarray(getattr(hp, name))
        out[name] = spec.name_of(v if run is None else v[run])
    return out
