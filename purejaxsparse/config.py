"""Sweep configs: validate and plan the runs (reading YAML and overrides: config_yaml.py).

A config names the agent, the env, the run lengths, static agent settings (`agent_config`),
traced per-run defaults (`hparams`), per-method defaults (`method_defaults`) and the `sweep`, a
mapping from per-run hyperparameter to a list of values whose cartesian product is the runs.
Every problem raises ConfigError with one line naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from typing import Any

import jax
import numpy as np

from . import envs

from .run_checks import check_layers, check_run, check_schedule
from .agents import AGENTS, Agent
from .config_yaml import apply_overrides, load_config  # noqa: F401  (read through this module too)
from .errors import shown
from .fields import INT32_MAX, ConfigError, field_specs, make_hparams, stack_hparams
from .sparse.methods import get_method, method_names
from .loggers import config_loggers

REQUIRED = ("agent", "env", "total_steps", "eval_every", "eval_episodes", "sweep")
OPTIONAL = ("name", "agent_config", "hparams", "method_defaults", "chunk_evals", "checkpoint_every", "logging")
MAX_RUNS = 100_000
"""The most runs one sweep may have (its grid is counted before it is expanded, so a bigger one
is refused at once): planning that many takes about a second, and the state of that many runs
fills an accelerator even for small networks. A bigger study is several sweeps."""

def _positive_int(config: dict, key: str) -> int:
    v = config[key]
    if not _is_int32(v) or v <= 0:
        raise ConfigError(f"{key}: got {shown(v)}; allowed: a positive integer up to {INT32_MAX:,}")
    return v


def _env_spec(value) -> tuple[str, dict]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        kwargs = {k: v for k, v in value.items() if k != "name"}
        return value["name"], kwargs
    raise ConfigError(f"env: got {shown(value)}; allowed: an env name or a mapping with 'name' "
                      f"({envs.describe_registered()})")


def make_env(value, num_envs: int):
    name, kwargs = _env_spec(value)
    if not envs.is_registered(name):
        raise ConfigError(f"env: unknown env {shown(name)}; allowed: {envs.describe_registered()}")
    try:
        return envs.make(name, num_envs=num_envs, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"env: {str(e).splitlines()[0]}") from None


def build_agent(config: dict) -> Agent:
    """Validate the run-level keys of `config` and build its agent (no runs planned)."""
    if not isinstance(config, dict):
        raise ConfigError("config: must be a mapping")
    unknown = sorted(set(config) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    for key in REQUIRED[:-1]:
        if key not in config:
            raise ConfigError(f"{key}: missing; required keys: {', '.join(REQUIRED)}")
    name = config["agent"]
    if name not in AGENTS:
        raise ConfigError(f"agent: unknown agent {shown(name)}; allowed: {', '.join(AGENTS)}")
    cls = AGENTS[name]
    total, every, episodes = (_positive_int(config, k) for k in ("total_steps", "eval_every", "eval_episodes"))
    config_loggers(config)  # `logging`: which live loggers the sweep writes to (loggers/)
    static = _parse_static(cls, config.get("agent_config"))
    env = make_env(config["env"], static.num_envs)
    eval_env = env.with_num_envs(episodes)
    try:
        agent = cls(env, static, eval_env, total, every, episodes)
    except ValueError as e:
        raise ConfigError(f"agent: {str(e).splitlines()[0]}") from None
    per_iter = agent.transitions_per_iteration
    if total % every:
        raise ConfigError(f"eval_every: {every} does not divide total_steps {total}; "
                          f"allowed: a divisor of total_steps")
    if every % per_iter:
        raise ConfigError(f"eval_every: {every} is not a multiple of the {per_iter} env steps one "
                          f"{name} iteration takes; allowed: multiples of {per_iter}")
    return agent


def _parse_static(cls, values):
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"agent_config: got {shown(values)}; allowed: a mapping of settings")
    return parse_static(cls.Static, values)


def parse_static(cls, values: dict | None, where: str = "agent_config"):
    """Instance of the static-settings dataclass `cls` from a mapping, validated.

    Unknown keys and wrong types raise ConfigError naming `where.key`; a field's metadata may
    set `min` (inclusive lower bound; exclusive with `min_open`).
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown setting; allowed: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, f in fields.items():
        if name not in values:
            continue
        v, hint = values[name], hints[name]
        origin = typing.get_origin(hint)
        if origin in (tuple, list):
            if not isinstance(v, (list, tuple)) or not all(_is_int32(x) for x in v):
                raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: a list of integers")
            v = tuple(v)
            if any(x < f.metadata.get("min", 1) for x in v):
                raise ConfigError(f"{where}.{name}: got {shown(list(v))}; allowed: integers >= {f.metadata.get('min', 1)}")
        elif hint is bool:
            if not isinstance(v, bool):
                raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: true or false")
        elif hint is int:
            if not _is_int32(v):
                raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: an integer")
        elif hint is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: a finite number")
            v = float(v)
        elif hint is str:
            choices = f.metadata.get("choices")
            if not isinstance(v, str) or (choices and v not in choices):
                allowed = ", ".join(choices) if choices else "a string"
                raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: {allowed}")
        low, above = f.metadata.get("min"), f.metadata.get("min_open", False)
        if low is not None and not isinstance(v, tuple) and (v < low or (above and v == low)):
            raise ConfigError(f"{where}.{name}: got {shown(v)}; allowed: {'>' if above else '>='} {low}")
        out[name] = v
    return cls(**out)


def _is_int32(v) -> bool:
    """An integer (not a bool) that fits the int32 the program computes with."""
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= INT32_MAX


@dataclasses.dataclass
class Plan:
    """A validated sweep: the resolved config, its agent, and one entry per run."""

    config: dict
    agent: Agent
    runs: list[dict]          # human values: run, seed and every hyperparameter
    hparams: Any              # batched hparams pytree [R]
    keys: jax.Array           # [R] PRNG keys, one per run (from its seed)
    chunk_evals: int
    duplicates: int           # runs dropped because their settings did not apply
    checkpoint_every: int = 1  # chunks between checkpoints (the last chunk is always saved)

    @property
    def num_runs(self) -> int:
        return len(self.runs)

    @property
    def num_chunks(self) -> int:
        return self.agent.num_evals // self.chunk_evals


def _seeds(value) -> list[int]:
    """The seeds of `sweep.seed`: a count, or distinct PRNG seeds (uint32)."""
    bad = ConfigError(f"sweep.seed: got {shown(value)}; allowed: a positive count or a list of integers in [0, 2**32)")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        if value <= 0:
            raise bad
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
                                                 for s in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"sweep.seed: got {shown(value)}; allowed: distinct seeds")
        return list(value)
    raise bad


def _check_grid_size(sweep: dict) -> None:
    """Refuse a sweep of more than MAX_RUNS combinations, counted before anything is expanded."""
    sizes = {k: v if k == "seed" and isinstance(v, int) and not isinstance(v, bool) else
             len(v) if isinstance(v, list) else 1 for k, v in sweep.items()}
    count = math.prod(sizes.values())
    if count > MAX_RUNS:
        grid = " x ".join(f"{n:,} {k}" for k, n in sizes.items())
        raise ConfigError(f"sweep: {grid} = {count:,} combinations; allowed: at most {MAX_RUNS:,} runs in one "
                          f"sweep (split it into several sweeps, e.g. by seed)")


def _mapping(config, key) -> dict:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: got {shown(value)}; allowed: a mapping")
    return value


def plan_sweep(config: dict) -> Plan:
    """Validate `config` and expand its sweep into runs (cartesian product, then de-duplicated)."""
    agent = build_agent(config)
    specs = field_specs(agent.HParams)
    static_names = [f.name for f in dataclasses.fields(agent.Static)]
    sweep = config.get("sweep")
    if sweep is None:
        sweep = {}
    if not isinstance(sweep, dict):
        raise ConfigError(f"sweep: got {shown(sweep)}; allowed: a mapping of hyperparameter -> list of values")
    _check_grid_size(sweep)
    axes: dict[str, list] = {}
    for key, values in sweep.items():
        if key == "seed":
            axes["seed"] = _seeds(values)
            continue
        if key in static_names:
            raise ConfigError(f"sweep.{key}: a static setting (it sets shapes or loop lengths) cannot vary "
                              f"within one program; allowed: seed, {', '.join(specs)}")
        if key not in specs:
            raise ConfigError(f"sweep.{key}: unknown hyperparameter; allowed: seed, {', '.join(specs)}")
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"sweep.{key}: empty list; allowed: at least one value")
        for v in values:
            specs[key].convert(f"sweep.{key}", v)
        axes[key] = values
    axes.setdefault("seed", [0])

    base = _mapping(config, "hparams")
    check_defaults(config, agent)
    steps = agent.optimizer_steps()
    runs, seen, dropped = [], set(), 0
    points, distinct, index = {}, {}, []  # a point's values do not depend on its seed: worked out once
    names = list(axes)
    for combo in itertools.product(*(axes[n] for n in names)):
        swept = dict(zip(names, combo))
        seed = swept.pop("seed")
        point = tuple(swept.values())
        if point not in points:
            human = run_values(config, agent, swept)
            check_schedule(human, *steps, agent.total_steps)
            points[point] = human, tuple(sorted(human.items()))
        human, ident = points[point]
        if (seed, ident) in seen:
            dropped += 1
            continue
        seen.add((seed, ident))
        index.append(distinct.setdefault(ident, len(distinct)))
        runs.append({"run": len(runs), "seed": seed, **human})

    hparams = stack_hparams(make_hparams(agent.HParams, dict(ident)) for ident in distinct)
    check_layers(agent, [dict(ident) for ident in distinct], hparams)
    hparams = jax.tree.map(lambda x: x[np.asarray(index)], hparams)
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray([r["seed"] for r in runs], np.uint32))
    chunk = _chunk_evals(config, agent.num_evals)
    every = _checkpoint_every(config)
    resolved = _resolved(config, agent, axes, base, chunk, {r["method"] for r in runs})
    if every != 1:
        resolved["checkpoint_every"] = every
    return Plan(resolved, agent, runs, hparams, keys, chunk, dropped, every)


def check_defaults(config, agent) -> None:
    """Validate the config's `hparams` and `method_defaults` (names and values)."""
    specs = field_specs(agent.HParams)
    for k, v in _mapping(config, "hparams").items():
        if k not in specs:
            raise ConfigError(f"hparams.{k}: unknown hyperparameter; allowed: {', '.join(specs)}")
        specs[k].convert(f"hparams.{k}", v)
    for method, values in _mapping(config, "method_defaults").items():
        if method not in method_names():
            raise ConfigError(f"method_defaults.{method}: unknown method; allowed: {', '.join(method_names())}")
        if not isinstance(values, dict):
            raise ConfigError(f"method_defaults.{method}: got {shown(values)}; allowed: a mapping")
        for k, v in values.items():
            if k not in specs or k == "method":
                raise ConfigError(f"method_defaults.{method}.{k}: unknown hyperparameter; allowed: "
                                  f"{', '.join(s for s in specs if s != 'method')}")
            specs[k].convert(f"method_defaults.{method}.{k}", v)


def run_values(config, agent, values: dict) -> dict:
    """Human hyperparameter values of one run: the single precedence rule.

    agent defaults < the method's declared defaults (`sparse.Method.defaults`) < the agent's
    `method_defaults` < config `hparams` < config `method_defaults` < `values` (a sweep point
    or make_hparams' arguments); then the settings that do not apply to the run's method
    (`sparse.Method.applies`) are reset to their defaults, so runs that differ only there are
    the same run. The method name is normalised ("Prune" is "prune") or rejected with a
    ConfigError.
    """
    specs = field_specs(agent.HParams)
    base = _mapping(config, "hparams")
    raw = values.get("method", base.get("method", specs["method"].default))
    method = specs["method"].name_of(specs["method"].convert("method", raw))
    merged = {**_declared_defaults(agent, method), **agent.method_defaults.get(method, {}), **base,
              **_config_method_defaults(config, method), **values, "method": method}
    hp = make_hparams(agent.HParams, merged)
    human = {n: specs[n].name_of(getattr(hp, n)) for n in specs}
    declaration = get_method(method)
    for name, spec in specs.items():
        if not declaration.applies(name):
            human[name] = 0.0 if name == "sparsity" else spec.default
    check_run(human)
    return human


def _declared_defaults(agent, method: str) -> dict:
    """The defaults a method's declaration sets, checked against the agent's hyperparameters."""
    specs = field_specs(agent.HParams)
    values = dict(get_method(method).defaults)
    for k, v in values.items():
        where = f"method {method}: its declared default {k}"
        if k not in specs:
            raise ConfigError(f"{where}: not a hyperparameter of the {agent.name} agent; allowed: "
                              f"{', '.join(s for s in specs if s != 'method')}")
        specs[k].convert(where, v)
    return values


def _config_method_defaults(config, method) -> dict:
    return dict((config.get("method_defaults") or {}).get(method, {}) or {})


def _resolved_method_defaults(config, agent, base, methods_run) -> dict:
    out = {}
    declared = {m for m in methods_run if get_method(m).defaults}
    for method in sorted(set(agent.method_defaults) | set(_mapping(config, "method_defaults")) | declared):
        own = {**(_declared_defaults(agent, method) if method in declared else {}),
               **agent.method_defaults.get(method, {})}
        values = {k: v for k, v in own.items() if k not in base}
        values.update(_config_method_defaults(config, method))
        if values:
            out[method] = values
    return out


def _checkpoint_every(config) -> int:
    """Chunks between checkpoints (default 1: after every chunk); more for states so large that
    writing them takes longer than a chunk computes."""
    return _positive_int(config, "checkpoint_every") if "checkpoint_every" in config else 1


def _chunk_evals(config, num_evals: int) -> int:
    """Evaluations per compiled chunk: the given value, or about 1/20 of the run (a divisor)."""
    value = config.get("chunk_evals")
    if value is None:
        target = max(1, math.ceil(num_evals / 20))
        return min(d for d in range(target, num_evals + 1) if num_evals % d == 0)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or num_evals % value:
        raise ConfigError(f"chunk_evals: got {shown(value)}; allowed: a positive divisor of the "
                          f"{num_evals} evaluations per run")
    return value


def _resolved(config, agent, axes, base, chunk, methods_run) -> dict:
    """The config with every default spelled out (what config.yaml records; resolving it again
    gives the same plan).

    `hparams` lists every field; `method_defaults` holds the config's own per-method values plus
    the agent's per-method defaults and those declared by the methods run (`methods_run`) that the
    config's `hparams` did not override (they rank below `hparams` when planning, so a copy that
    outranked the spelled-out `hparams` would change runs).
    """
    specs = field_specs(agent.HParams)
    hparams = {n: s.default for n, s in specs.items()}
    hparams.update(base)
    out = {
        "name": config.get("name"),
        "agent": agent.name,
        "env": config["env"],
        "total_steps": agent.total_steps,
        "eval_every": agent.eval_every,
        "eval_episodes": agent.eval_episodes,
        "chunk_evals": chunk,
        "agent_config": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(agent.static).items()},
        "hparams": hparams,
        "method_defaults": _resolved_method_defaults(config, agent, base, methods_run),
        "sweep": {k: v for k, v in axes.items()},
        "logging": {name: True for name in config_loggers(config)} or None,
    }
    return {k: v for k, v in out.items() if v is not None}
