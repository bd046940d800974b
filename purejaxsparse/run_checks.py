"""The checks of a planned run that look across its fields or at what it will build: a pruning
ramp that goes up, a mask schedule that ends within the run's optimizer steps, and no layer left
without an active weight. `config.plan_sweep` runs them before anything compiles."""

from __future__ import annotations

import jax
import numpy as np

from . import sparse as sp
from .errors import ConfigError
from .sparse.methods import get_method


def check_run(values: dict) -> None:
    """Cross-field checks of one run's human values (after defaults are applied)."""
    method = values.get("method")
    if method is not None and get_method(method).schedule == "polynomial" and values["start"] >= values["end"]:
        raise ConfigError(f"{method}: start {values['start']} must be below end {values['end']} "
                          f"(pruning ramps up between them); set hparams or method_defaults.{method}")


def schedule_steps(values: dict) -> tuple[str, ...]:
    """The mask-schedule steps a run must reach: start and end of a method with a schedule
    (SET, RigL, pruning), else the start of a sparse start's dense_then_cut cut (static)."""
    method = get_method(values["method"])
    if method.schedule != "never":
        return ("start", "end")
    if method.init == "sparse" and values.get("start_mode") == "dense_then_cut" and values["start"] > 0:
        return ("start",)
    return ()


def check_schedule(values: dict, steps: int, how: str, total_steps: int) -> None:
    """Refuse a run whose mask schedule lies beyond its last optimizer step, `steps` - 1 (the
    agent's `optimizer_steps`): `schedule_steps` (SET/RigL's start and end, pruning's start and
    end, the cut of start_mode dense_then_cut). Such a run would never reach its target (pruning
    stays dense, a cut never comes) yet be labelled with it."""
    method = values["method"]
    keys = schedule_steps(values)
    last = steps - 1
    for key in keys:
        if values[key] > last:
            raise ConfigError(
                f"{key}: {values[key]} ({method}) is beyond the run's last optimizer step, {last} "
                f"({steps:,} optimizer steps in {total_steps:,} env steps: {how}); allowed: at most {last} "
                f"(mask schedules count optimizer steps, not env steps)")


def check_layers(agent, points: list[dict], hparams) -> None:
    """Refuse runs (`points`: human values; `hparams`: theirs, stacked) whose initial or final
    masks leave some layer of some network without an active weight (sparse.empty_layers)."""
    for name, net, hp in agent.sparse_networks(hparams):
        empty = np.asarray(jax.vmap(lambda h: sp.empty_layers(net.spec, h))(hp))
        if empty.any():
            p, layer = np.argwhere(empty)[0]
            run = points[p]
            shape = "x".join(map(str, net.spec.shapes[layer]))
            own = float(str(np.float32(np.asarray(hp.sparsity)[p])))
            which = "" if own == run["sparsity"] else f" (its {name} network's: {own})"
            raise ConfigError(
                f"sparsity: {run['sparsity']}{which} leaves layer {net.spec.names[layer]} ({shape}) of the {name} "
                f"network of the {run['method']} runs ({run['distribution']}) with no active weight; allowed: a "
                f"sparsity that keeps at least one weight in every layer")
