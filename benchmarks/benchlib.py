"""Shared helpers of the benchmark scripts: configs, compiled chunk runners, timing, tables.

Timing rules every script follows:
- compile time is excluded (ahead-of-time `lower(...).compile()`, timed and reported apart);
- each compiled function runs once untimed (warm-up) before it is timed;
- a timing ends with `jax.block_until_ready` on the result;
- a measurement is repeated and the fastest repeat is reported (the CPU is shared, so slower
  repeats are other people's load, not ours); the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


# ---------------------------------------------------------------------------------------------
# environment of a measurement
def load_average() -> str:
    """The 1, 5 and 15 minute load averages (what `uptime` prints)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux/macOS
        return "n/a"


def machine_line() -> str:
    devs = jax.devices()
    kind = getattr(devs[0], "device_kind", devs[0].platform)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"jax {jax.__version__} | {len(devs)} x {devs[0].platform.upper()} ({kind}) | "
            f"{cpus} of {os.cpu_count()} CPUs | {platform.processor() or platform.machine()} | "
            f"load average {load_average()}")


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes that finish in a few minutes on a 2-core CPU "
                         "(default: the full sizes, meant for a GPU)")
    ap.add_argument("--smoke", action="store_true",
                    help="the tiniest sizes that still run the whole script (real package calls, "
                         "compiles and timings) in seconds: checks that it works; its numbers mean "
                         "nothing")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats per measurement (the fastest is reported)")
    ap.add_argument("--cpus", type=int, default=None,
                    help="pin this process (and its children) to its first N CPUs before JAX "
                         "starts, which sizes XLA:CPU's thread pool; on a loaded 2-core machine "
                         "1 is faster than 2 (default: all CPUs)")
    return ap


def preset(args, *, smoke, quick, full):
    """The value of a setting for the script's size: --smoke, --quick or full mode (the same
    code path at each size, so the smoke run in CI covers --quick and full)."""
    return smoke if args.smoke else quick if args.quick else full


def print_ratio(args, ratio: float, digits: int = 3) -> None:
    """The last line of every script: `ratio: X` (under --smoke, flagged as meaningless)."""
    note = " (smoke: sizes too small to mean anything)" if getattr(args, "smoke", False) else ""
    print(f"ratio: {ratio:.{digits}f}{note}")


def pin_cpus(n: int | None) -> None:
    """Restrict this process to its first n allowed CPUs (before the JAX CPU client starts)."""
    if not n:
        return
    from jax._src import xla_bridge
    if getattr(xla_bridge, "_backends", None):
        raise RuntimeError("--cpus must take effect before JAX starts its backends")
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, allowed[:n])


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_memory() -> dict | None:
    """Device allocator statistics (GPU/TPU); None where the backend has none (CPU)."""
    try:
        return jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------
# configs
def dqn_config(*, hidden=(64, 64), batch_size=64, buffer_size=100_000, learning_starts=1000,
               total_steps=10_000, eval_every=1000, eval_episodes=10, env="CartPole-v1",
               hparams: dict | None = None, **agent_config) -> dict:
    """A DQN config (the keys the library's config files use); `sweep` is left to the caller."""
    return {
        "name": "bench", "agent": "dqn", "env": env, "total_steps": total_steps,
        "eval_every": eval_every, "eval_episodes": eval_episodes,
        "agent_config": {"hidden": list(hidden), "batch_size": batch_size, "buffer_size": buffer_size,
                         "learning_starts": learning_starts, **agent_config},
        "hparams": dict(hparams or {}), "sweep": {},
    }


def build_agent(config: dict):
    from purejaxsparse.config import build_agent as _build
    return _build(dict(config))


def run_hparams(config: dict, methods: Sequence[str], per_method: dict | None = None, **values):
    """Keys and stacked hparams of len(methods) runs, run r with method methods[r] and seed r.

    values: hyperparameters of every run; per_method: {method: {name: value}} on top."""
    import purejaxsparse as pjs
    per_method = per_method or {}
    train = pjs.make_train(config)
    hps = pjs.stack_hparams([train.hparams(method=m, **{**values, **per_method.get(m, {})}) for m in methods])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(len(methods), dtype=jnp.uint32))
    return keys, hps


def take(tree, i: int):
    """Run i of a batched pytree."""
    return jax.tree.map(lambda x: x[i], tree)


# ---------------------------------------------------------------------------------------------
# compiled chunks
class Chunks:
    """A training run (or a vmapped batch of runs) advanced one chunk of `chunk_evals`
    evaluation periods at a time by ONE compiled function, exactly as the sweep engine does.

    batched=True uses the engine's own chunk function (`purejaxsparse.sweep`: jit of vmap of
    `agent.run`, state donated); batched=False jits `agent.run` for a single run.
    """

    def __init__(self, agent, chunk_evals: int, batched: bool):
        from purejaxsparse import sweep

        self.agent, self.chunk_evals, self.batched = agent, chunk_evals, batched
        self.steps_per_chunk = chunk_evals * agent.eval_every          # env steps per run
        self.iters_per_chunk = chunk_evals * agent.iterations_per_eval
        if batched:
            self._fn = sweep.chunk_function(agent, chunk_evals)
            self._init = jax.jit(jax.vmap(agent.init))
        else:
            self._fn = jax.jit(lambda s, h, t0: agent.run(s, h, t0, chunk_evals), donate_argnums=0)
            self._init = jax.jit(agent.init)
        self.compiled = None
        self.compile_seconds = 0.0

    def init(self, keys, hparams):
        return jax.block_until_ready(self._init(keys, hparams))

    def compile(self, states, hparams) -> float:
        t = time.perf_counter()
        self.compiled = self._fn.lower(states, hparams, jnp.int32(0)).compile()
        self.compile_seconds = time.perf_counter() - t
        return self.compile_seconds

    def __call__(self, states, hparams, chunk_index: int):
        """Chunk `chunk_index` (0 = the first, with the replay warm-up); waits for the result."""
        t0 = jnp.int32(chunk_index * self.iters_per_chunk)
        states, metrics = self.compiled(states, hparams, t0)
        return jax.block_until_ready(states), metrics


def timed(fn: Callable, *args):
    """(result, seconds) of fn(*args) with the result blocked on."""
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t


def compile_aot(jitted, *args):
    """(compiled, seconds) of an ahead-of-time compilation."""
    t = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t


# ---------------------------------------------------------------------------------------------
# output
def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table (also readable as plain text)."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
        if isinstance(v, (int, np.integer)):
            return f"{v:,}"
        return str(v)
    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda vals: "| " + " | ".join(v.rjust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    return "\n".join([line(list(headers)), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(c) for c in cells)])
