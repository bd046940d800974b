"""The sweep engine: every run of a plan advances in ONE compiled chunk function.

A host loop calls the compiled chunk (a `lax.scan` over some evaluation periods, vmapped over
runs) repeatedly; after each chunk it appends the chunk's evaluations to results.csv, starts
saving the full batched state with orbax (written in the background while the next chunk
computes; every `checkpoint_every` chunks, and after the last) and moves a progress bar. The
runs axis is sharded over every visible device (`jax.sharding`), padded to a multiple of the
device count. A killed or
interrupted sweep resumes from its newest readable checkpoint and ends with exactly the rows of
an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import memory
from .config import Plan
from .interrupt import Interrupted, stop_on_signal  # noqa: F401  (Interrupted: read through here too)
from .results import DIVERGED_STEP, FINITE, env_name, metric_columns, result_header, result_rows
from .store import SweepDir, pad_runs
from .sweep_lock import disk_errors

TRACE_COUNT = {"chunk": 0}
"""How often a chunk function was traced (compiled); one sweep traces it exactly once."""


@dataclasses.dataclass
class SweepStats:
    out_dir: Path
    chunks_run: int
    compile_seconds: float
    run_seconds: float
    env_steps: int

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / max(self.run_seconds, 1e-9)


def sweep_devices(agent) -> list:
    """The devices a sweep's runs are spread over: all of them, except for an env whose runs are
    folded into one host pool (EnvPool), which one device drives."""
    if getattr(agent.env, "checkpointable", True):
        return jax.devices()
    return jax.local_devices()[:1]


def chunk_function(agent, chunk_evals: int):
    """The engine's compiled unit: `chunk(states, hparams, t0) -> (states, metrics)` runs
    `chunk_evals` evaluation periods of every run (jit of vmap of `agent.run`; the states are
    donated). metrics: [R, chunk_evals] arrays."""
    def chunk(states, hparams, t0):
        TRACE_COUNT["chunk"] += 1
        return jax.vmap(lambda s, h: agent.run(s, h, t0, chunk_evals))(states, hparams)
    return jax.jit(chunk, donate_argnums=0)


class _Batch:
    """A plan's runs laid out for its devices: keys and hparams padded (store.pad_runs) and
    sharded over the runs axis, the initialiser, and the state's shapes."""

    def __init__(self, plan: Plan, devices):
        agent = plan.agent
        self.sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
        self.keys, self.hparams = jax.device_put(pad_runs((plan.keys, plan.hparams), plan.num_runs, len(devices)),
                                                 self.sharding)
        # every leaf on the runs axis (init's outputs that are the same for every run, e.g. Adam's
        # step count, too), so the chunk compiles for, and keeps, one sharding
        self.init = jax.jit(jax.vmap(agent.init), out_shardings=self.sharding)
        self.shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.sharding),
                                   jax.eval_shape(self.init, self.keys, self.hparams))
        # a restore goes straight into the runs sharding: no initial state is allocated beside it
        # (zero-size leaves are not stored; they come from these empty arrays)
        self.like = jax.tree.map(lambda s: jax.device_put(jnp.zeros(s.shape, s.dtype), self.sharding)
                                 if s.size == 0 else s, self.shapes)
        self.agent = agent

    def start(self, done: int, restored):
        """The state to go on from: a fresh one, or the restored one (EnvPool's emulators were not
        saved: their episodes start again)."""
        if not done:
            return self.init(self.keys, self.hparams)
        if getattr(self.agent.env, "checkpointable", True):
            return restored
        restart = jax.jit(jax.vmap(self.agent.resume_episodes), out_shardings=self.sharding, donate_argnums=0)
        return restart(restored, jax.vmap(lambda k: jax.random.fold_in(k, done))(self.keys))


def describe(plan: Plan, done: int = 0) -> str:
    """One line: runs, steps, agent, env, devices and chunks of a sweep."""
    agent = plan.agent
    devices = sweep_devices(agent)
    steps_per_chunk = plan.chunk_evals * agent.eval_every
    runs = f"{plan.num_runs} run" + ("" if plan.num_runs == 1 else "s")
    return (f"{runs} x {agent.total_steps:,} env steps of {agent.name} on {env_name(plan.config)}"
            f" as one program on {len(devices)} {devices[0].platform.upper()} device(s); "
            f"{plan.num_chunks} chunks of {steps_per_chunk:,} steps" + (f", resuming after chunk {done}" if done else ""))


def run_sweep(plan: Plan, out_dir, *, resume: bool = False, progress: bool = True,
              max_chunks: int | None = None, log=print, device_memory=None, on_chunk=None) -> SweepStats:
    """Train every run of `plan`, writing into `out_dir` (new, or an existing sweep to resume).

    max_chunks: stop after this many chunks in this call (the sweep stays resumable).
    With several processes (jax.distributed), every process calls this with the same plan and
    a shared out_dir; process 0 alone writes the csv/yaml files, logs and shows progress.

    Before anything is allocated or written, the state's memory is estimated (memory.py) and a
    sweep that cannot fit is refused with a one-line ConfigError; the chunk is then compiled
    from the state's shapes and refused likewise if its temporaries do not fit, and only then
    is the state allocated (initialised, or restored without initialising when resuming) and
    a new sweep's files written. device_memory: bytes (or "80GB") that override the memory
    JAX reports per device (memory.available_memory).

    One writer at a time: process 0 locks out_dir (sweep_lock.SweepLock; a resume once its memory is
    checked, a new sweep before its first write). A resume restores the newest checkpoint that
    reads back (a complete sweep's final one too, before it is called complete). SIGINT and
    SIGTERM raise Interrupted (the sweep stays resumable) whenever they come, also while the
    chunk compiles (interrupt.py: then right after it); a full or read-only disk raises
    disk.DiskError. Raised mid-chunk, Interrupted leaves that chunk computing in XLA's threads: a
    process that then ends should end with interrupt.end_process, as the CLI does.

    on_chunk(rows, chunks_done, env_steps_per_second): called on process 0 after each chunk is
    written and checkpointed, with the chunk's results.csv rows as dicts (header -> value) and the
    chunk's env steps per second over all runs (e.g. to log them live); it never sees the program.
    """
    store, agent, num_runs = SweepDir(out_dir), plan.agent, plan.num_runs
    primary = jax.process_index() == 0
    log = log if primary else (lambda *_: None)
    steps_per_chunk = plan.chunk_evals * agent.eval_every
    with contextlib.ExitStack() as held:
        signals = held.enter_context(stop_on_signal())
        devices = sweep_devices(agent)
        estimate = memory.estimate(plan, device_memory, num_devices=len(devices))
        memory.check(estimate)
        if resume and primary:
            held.callback(store.lock().release)
        batch = _Batch(plan, devices)
        checkpoints, done, states = None, 0, None
        if resume:
            checkpoints = held.enter_context(store.checkpoints(batch.shapes, asynchronous=True))
            done = checkpoints.latest() or 0
            checkpoints.check_runs(done, num_runs, len(devices))
            if done >= plan.num_chunks:  # complete, if its final checkpoint reads back
                done, states = checkpoints.newest(lambda c: checkpoints.restore(c, batch.like), log)
                if done >= plan.num_chunks:
                    if primary:
                        store.cut_results(done * steps_per_chunk)
                    log(f"sweep in {store.path} is already complete ({done}/{plan.num_chunks} chunks)")
                    return SweepStats(store.path, 0, 0.0, 0.0, 0)

        signals.check()
        log(describe(plan, done))
        log(estimate.table())
        t_compile = time.perf_counter()
        compiled = chunk_function(agent, plan.chunk_evals).lower(batch.shapes, batch.hparams, jnp.int32(0)).compile()
        signals.check()  # a signal while compiling may have been raised inside a callback that swallowed it
        compile_seconds = time.perf_counter() - t_compile
        estimate = memory.with_compiled(estimate, compiled)
        log(f"compiled in {compile_seconds:.1f} s" + estimate.temporaries_note())
        memory.check(estimate)

        if done and states is None:
            done, states = checkpoints.newest(lambda c: checkpoints.restore(c, batch.like), log)
        states = batch.start(done, states)
        signals.check()
        if primary:
            with signals.deferred():
                if resume:
                    store.cut_results(done * steps_per_chunk)
                else:
                    held.callback(store.lock(new=True).release)
                    store.write_new(plan)
        if checkpoints is None:
            checkpoints = held.enter_context(store.checkpoints(batch.shapes, asynchronous=True))

        bar = _progress(progress and primary, total=num_runs * agent.total_steps,
                        initial=done * num_runs * steps_per_chunk, desc=f"{num_runs} runs, env steps")
        if bar is not None:
            held.callback(bar.close)
        t_run, chunks_run = time.perf_counter(), 0
        first_bad = store.recorded_divergence(num_runs) if done else np.full(num_runs, -1)
        header = result_header(metric_columns(agent))
        saving = _Saving(store, checkpoints, on_chunk if primary else None)
        for c in range(done, plan.num_chunks):
            signals.check()
            t_chunk = time.perf_counter()
            states, metrics = compiled(states, batch.hparams, jnp.int32(c * plan.chunk_evals * agent.iterations_per_eval))
            first_bad, metrics = _with_divergence(first_bad, _fetch(metrics, num_runs))
            rows = result_rows(plan.runs, env_name(plan.config), agent.name, metrics, metric_columns(agent))
            chunks_run += 1
            last = c + 1 == plan.num_chunks or (max_chunks is not None and chunks_run >= max_chunks)
            with signals.deferred():
                if primary:
                    store.append_results(rows)
                saving.done([dict(zip(header, row)) for row in rows], c + 1,
                            num_runs * steps_per_chunk / (time.perf_counter() - t_chunk))
                if (c + 1) % plan.checkpoint_every == 0 or last:
                    saving.save(c + 1, states)
            if bar is not None:
                bar.update(num_runs * steps_per_chunk)
                bar.set_postfix_str(f"chunk {c + 1}/{plan.num_chunks}, "
                                    f"mean return {float(np.mean(metrics['eval_return'][:, -1])):.1f}")
            if last:
                break
        with signals.deferred():
            saving.wait()
    run_seconds = time.perf_counter() - t_run
    return SweepStats(store.path, chunks_run, compile_seconds, run_seconds, chunks_run * num_runs * steps_per_chunk)


class _Saving:
    """The engine's checkpoints, saved in the background: the save of chunk k overlaps the
    compute of chunk k + 1 (and is waited for before the next save starts, and at the end).

    A chunk's results.csv rows are appended before its save starts, as before: a resume cuts
    them back to its newest complete checkpoint. `on_chunk` (live logging) sees a chunk's rows
    only once a checkpoint at or after it is complete, so it never logs a chunk that a resume
    runs again."""

    def __init__(self, store: SweepDir, checkpoints, on_chunk):
        self.store, self.checkpoints, self.on_chunk = store, checkpoints, on_chunk
        self.in_flight: int | None = None   # the chunk count of the save in progress
        self.unlogged: list = []            # (rows, chunks done, steps/s) waiting for a checkpoint

    def done(self, rows, chunks_done: int, steps_per_second: float) -> None:
        if self.on_chunk is not None:
            self.unlogged.append((rows, chunks_done, steps_per_second))

    def save(self, chunks_done: int, states) -> None:
        self.wait()
        with disk_errors(self.store.path, f"saving checkpoint {chunks_done}"):
            self.checkpoints.save(chunks_done, states)
        self.in_flight = chunks_done

    def wait(self) -> None:
        """Wait for the save in progress; then log the chunks it covers."""
        if self.in_flight is None:
            return
        with disk_errors(self.store.path, f"saving checkpoint {self.in_flight}"):
            self.checkpoints.wait()
        covered = [u for u in self.unlogged if u[1] <= self.in_flight]
        self.unlogged = self.unlogged[len(covered):]
        self.in_flight = None
        for rows, chunks_done, steps_per_second in covered:
            self.on_chunk(rows, chunks_done, steps_per_second)


def _fetch(metrics, num_runs: int) -> dict:
    """A chunk's metrics as numpy on the host, without the padding runs (every process gets
    every run's, also across hosts)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        metrics = multihost_utils.process_allgather(metrics, tiled=True)
    return {k: np.asarray(v)[:num_runs] for k, v in jax.device_get(metrics).items()}


def _with_divergence(first_bad: np.ndarray, metrics: dict) -> tuple[np.ndarray, dict]:
    """(each run's first diverged step so far, metrics with `diverged_step`: that step from it
    on, -1 before and for runs that never diverged)."""
    first_bad = _first_divergence(first_bad, metrics)
    marked = (first_bad[:, None] >= 0) & (metrics["step"] >= first_bad[:, None])
    return first_bad, {**metrics, DIVERGED_STEP: np.where(marked, first_bad[:, None], -1)}


def _first_divergence(previous: np.ndarray, metrics: dict) -> np.ndarray:
    """[R] step of each run's first evaluation with non-finite (or blown-up) params, -1 if
    none yet; `previous` carries it over from earlier chunks."""
    bad = ~np.asarray(metrics[FINITE], bool)
    steps = np.asarray(metrics["step"])
    in_chunk = np.where(bad.any(1), steps[np.arange(len(bad)), bad.argmax(1)], -1)
    return np.where(previous >= 0, previous, in_chunk)


def _progress(enabled: bool, total: int, initial: int, desc: str):
    """Progress over the env steps of all runs: tqdm shows steps/s and the ETA."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, desc=desc,
                file=sys.stderr, dynamic_ncols=True, smoothing=0.3)
