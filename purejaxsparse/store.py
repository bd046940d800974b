"""The sweep directory: the one module that knows what it holds and how it is read and written.

    DIR/config.yaml       the resolved config; the sweep's plan is made again from it
    DIR/runs.csv          one row per run: its settings, total and active parameters
    DIR/results.csv       one row per run and evaluation, appended after every chunk
    DIR/checkpoints/      orbax: the whole batched state after each chunk (the two newest kept)
    DIR/state_layout.txt  each state leaf's path, per-run shape and dtype (what a checkpoint holds)
    DIR/.lock             the PID of the one process writing the sweep
    DIR/report/           the report (analysis.report)

`SweepDir` opens a directory: its plan, its checkpoints (restore the whole state, or one run's
leaves at some key paths), its results; and writes the files of a new sweep. The runs axis of a
sweep's state is padded to a multiple of the device count (`padded_runs`, the one rule).

Checkpoints are saved atomically (orbax commits one by renaming it), in the background while the
next chunk computes, and the two newest are kept, so a kill at any moment leaves a complete one,
and a damaged newest one (cut short by a full disk or a dying node) leaves an older one: a
checkpoint is verified by reading it back (`SweepCheckpoints.newest`). Who may write the
directory, and what a failed write says, is sweep_lock's.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import yaml

from . import disk
from .config import Plan, load_config, plan_sweep
from .fields import ConfigError, field_specs, first_line
from .results import (CONFIG_FILE, FINITE, RESULTS_FILE, RUN_INFO, RUN_OUTPUTS, RUNS_FILE, SHAPE_COLUMNS,
                      SWEEP_FILES, append_rows, env_name, metric_columns, read_header, read_results, result_header,
                      truncate_results, write_csv)
from .sweep_lock import SweepLock, disk_errors

# orbax logs a failed read or write through absl, and leaves the sibling tasks and callbacks of
# the one that failed to report it again (asyncio's "Task exception was never retrieved", a
# callback into the event loop orbax has closed): the failure is reported once, by the caller
logging.getLogger("absl").setLevel(logging.CRITICAL)
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _quiet_closed_loop(unraisable, hook=sys.unraisablehook):
    if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
        hook(unraisable)


sys.unraisablehook = _quiet_closed_loop


def padded_runs(num_runs: int, num_devices: int) -> int:
    """The run count a sweep computes and checkpoints: padded up to a multiple of the device
    count, so that every device holds as many runs (the padding is never written to a csv)."""
    return -(-num_runs // num_devices) * num_devices


def pad_runs(tree, num_runs: int, num_devices: int):
    """`tree`'s leading runs axis padded to `padded_runs` with copies of the last run."""
    extra = padded_runs(num_runs, num_devices) - num_runs
    return tree if extra == 0 else jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, 0)]), tree)


class SweepDir:
    """One sweep directory (the module docstring lists its files)."""

    def __init__(self, path):
        self.path = Path(path)
        self.config_file, self.runs_file, self.results_file = (self.path / name for name in
                                                               (CONFIG_FILE, RUNS_FILE, RESULTS_FILE))
        self.checkpoints_dir = self.path / "checkpoints"

    def plan(self, command: str, needs: tuple[str, ...] = SWEEP_FILES[:1]) -> Plan:
        """The sweep's plan, made again from its config.yaml, once the files `command` needs
        (some of SWEEP_FILES) are there and its tables have the columns this sweep writes;
        otherwise a one-line ConfigError naming what is missing, before any work."""
        missing = [name for name in needs if not (self.path / name).is_file()]
        if missing:
            present = [name for name in SWEEP_FILES if (self.path / name).is_file()]
            raise ConfigError(f"{command}: {self.path} is not a sweep directory (no {', '.join(missing)}"
                              + (f"; it has {', '.join(present)}: restore the missing file or start the sweep "
                                 f"again with a new --out)" if present else ")"))
        plan = plan_sweep(load_config(self.config_file))
        if RESULTS_FILE in needs:
            expected = result_header(metric_columns(plan.agent))
            if read_header(self.results_file) != expected:
                raise ConfigError(f"{command}: {self.results_file} does not start with the header this sweep "
                                  f"writes ({','.join(expected[:4])},...); restore it, or start the sweep again "
                                  f"with a new --out")
        if RUNS_FILE in needs and read_header(self.runs_file)[:1] != ["run"]:
            raise ConfigError(f"{command}: {self.runs_file} does not start with a header of runs (run,...); "
                              f"restore it, or start the sweep again with a new --out")
        return plan

    def check_writable(self) -> None:
        """Refuse (disk.DiskError, one line) a sweep that resume could not write: the directory,
        its checkpoints/ and results.csv, checked before anything compiles."""
        then = f"run: purejaxsparse resume {self.path}"
        disk.check_dir(self.path, "writing into", then)
        if self.checkpoints_dir.is_dir():
            disk.check_dir(self.checkpoints_dir, "writing into", then)
        disk.check_file(self.results_file, "writing", then)

    def lock(self, new: bool = False) -> "SweepLock":
        return SweepLock(self.path, new=new)

    def write_new(self, plan: Plan) -> None:
        """The files of a new sweep: config.yaml (resolved), runs.csv, results.csv (header only,
        written last: the directory is a resumable sweep once it exists)."""
        agent = plan.agent
        with disk_errors(self.path, "writing the sweep files"):
            self.path.mkdir(parents=True, exist_ok=True)
            self.config_file.write_text(yaml.safe_dump(plan.config, sort_keys=False))
            names = list(field_specs(agent.HParams))
            final_active = np.asarray(jax.jit(jax.vmap(agent.final_active_params))(plan.hparams))
            settings = list(RUN_INFO) + [n for n in names if n not in RUN_INFO]
            shape = [getattr(agent.static, c) for c in SHAPE_COLUMNS]
            rows = [[{"env": env_name(plan.config), "agent": agent.name, **run}[c] for c in settings]
                    + shape + [agent.total_params(), int(final_active[r])] for r, run in enumerate(plan.runs)]
            write_csv(self.runs_file, settings + list(SHAPE_COLUMNS + RUN_OUTPUTS), rows)
            write_csv(self.results_file, result_header(metric_columns(agent)), [])

    def checkpoints(self, like, asynchronous: bool = False) -> "SweepCheckpoints":
        """Its checkpoints, for a state shaped like `like` (created if missing); asynchronous:
        `save` returns once the state is copied, and the disk write overlaps what follows."""
        with disk_errors(self.path, "creating checkpoints/"):
            return SweepCheckpoints(self.checkpoints_dir, like=like, asynchronous=asynchronous)

    def restore_newest(self, like, log=print):
        """(chunks done, state) of the newest checkpoint that reads back, shaped and placed like
        `like` (arrays); (None, None) without one."""
        if not self.checkpoints_dir.is_dir():
            return None, None
        with self.checkpoints(like) as checkpoints:
            return checkpoints.newest(lambda c: checkpoints.restore(c, like), log)

    def restore_run(self, shapes, wanted, run: int, log=print):
        """(chunks done, run `run`'s state as numpy with only the leaves `wanted` accepts read,
        every other leaf None) from the newest checkpoint that reads back, e.g. a policy without
        the replay buffer; (None, None) without a checkpoint. shapes: the batched state's
        shapes. wanted: a rule over key paths, `wanted(path) -> bool` for each leaf's path
        (jax.tree_util's), e.g. `picked_by(agent.policy_inputs, shapes)`."""
        if not self.checkpoints_dir.is_dir():
            return None, None
        leaves = jax.tree_util.tree_flatten_with_path(shapes)[0]
        indices = [str(i) for i, (path, leaf) in enumerate(leaves) if leaf.size > 0 and wanted(path)]
        device = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
        with self.checkpoints(shapes) as checkpoints:
            done, stored = checkpoints.newest(lambda c: checkpoints.restore_leaves(c, indices, device), log)
        if done is None:
            return None, None
        return done, jax.tree.unflatten(jax.tree.structure(shapes), [
            np.asarray(stored[str(i)][run]) if str(i) in stored else None for i in range(len(leaves))])

    def cut_results(self, max_step: int) -> None:
        """results.csv without the rows after `max_step` (those of chunks to be run again)."""
        with disk_errors(self.path, "writing results.csv"):
            truncate_results(self.results_file, max_step)

    def append_results(self, rows: list[list]) -> None:
        with disk_errors(self.path, "writing results.csv"):
            append_rows(self.results_file, rows)

    def recorded_divergence(self, num_runs: int) -> np.ndarray:
        """[R] the first diverged step results.csv records per run, -1 if none (a resumed sweep
        carries it on)."""
        first = np.full(num_runs, -1)
        try:
            results = read_results(self.path)
        except ValueError:  # no complete row yet
            return first
        if FINITE not in results.columns:
            return first
        flagged = results[results[FINITE].eq(False) & results["run"].between(0, num_runs - 1)]
        steps = flagged.groupby("run")["step"].min()
        first[steps.index.to_numpy()] = steps.to_numpy()
        return first


def picked_by(select, like):
    """The rule over key paths (`restore_run`'s `wanted`) that accepts the leaves `select(state)`
    returns: `select` is applied to `like` with each leaf replaced by its key path, so a leaf is
    picked by where it sits, never by the object in it (DQN's params and target_params start as
    the same arrays, and only one of them may be wanted)."""
    labelled = jax.tree_util.tree_map_with_path(lambda path, _: jax.tree_util.keystr(path), like)
    chosen = frozenset(jax.tree.leaves(select(labelled)))
    return lambda path: jax.tree_util.keystr(path) in chosen


def state_layout(state) -> str:
    """Each leaf's path, per-run shape and dtype, a line each: what a checkpoint's flat leaves must
    match to be restored into `state` (runs axis first; its length, the run count, is left out)."""
    return "".join(f"{jax.tree_util.keystr(path)} {tuple(leaf.shape[1:])} {leaf.dtype}\n"
                   for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0])


class SweepCheckpoints:
    """Checkpoints of one sweep directory, indexed by the number of chunks done.

    With `like` (the batched state, arrays or shapes) the layout of the state it saves is kept
    beside the checkpoints (DIR/state_layout.txt), and checkpoints of another layout (written by
    a purejaxsparse whose agents hold their state differently) are refused in one line instead
    of being restored leaf by leaf into the wrong places.

    asynchronous: `save` returns as soon as orbax holds a copy of the state, and the write goes on
    in the background (orbax's asynchronous checkpointing) while the caller computes; `wait` (or
    the next save, or close) waits for it. A checkpoint becomes visible only when its write is
    complete (orbax renames it into place), so a kill during the write leaves the older ones."""

    def __init__(self, directory: Path, like=None, asynchronous: bool = False):
        self.directory = Path(directory).absolute()
        self.asynchronous = asynchronous
        options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                               enable_async_checkpointing=asynchronous)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_handlers=ocp.StandardCheckpointHandler())
        self.unreadable: set[int] = set()
        self.layout = None if like is None else state_layout(like)
        self.layout_file = self.directory.parent / "state_layout.txt"
        if (self.layout is not None and self.manager.all_steps() and self.layout_file.is_file()
                and self.layout_file.read_text() != self.layout):
            self.manager.close()
            raise ConfigError(f"checkpoints: {self.directory} holds a state of another layout than this "
                              f"purejaxsparse builds (saved by another version); resume with the version that "
                              f"wrote it, or remove {self.directory} and resume to start the sweep over")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def latest(self) -> int | None:
        """The newest checkpoint not found unreadable."""
        return max(set(self.manager.all_steps()) - self.unreadable, default=None)

    def save(self, chunks_done: int, state) -> None:
        """Save (asynchronous: start saving, after the previous save is complete); an unreadable
        checkpoint of the same step (one a resume went back past) is replaced."""
        self.wait()
        if chunks_done in self.unreadable:
            self.manager.delete(chunks_done)
            self.unreadable.discard(chunks_done)
        self.manager.save(chunks_done, args=ocp.args.StandardSave(_stored_leaves(state)))
        if not self.asynchronous:
            self.wait()

    def wait(self) -> None:
        """Wait until the save in progress (if any) is complete on disk; a failed write raises here."""
        self.manager.wait_until_finished()
        if (self.layout is not None and self.manager.all_steps()
                and not (self.layout_file.is_file() and self.layout_file.read_text() == self.layout)):
            self.layout_file.write_text(self.layout)

    def saved_runs(self, chunks_done: int) -> int | None:
        """Leading (runs) dimension of the checkpoint: the run count padded for its device count
        (None: its metadata does not read; reading the checkpoint then says why)."""
        try:
            meta = self.manager.item_metadata(chunks_done)
            tree = getattr(meta, "tree", meta)
            return int(tree["0"].shape[0])
        except Exception:  # noqa: BLE001 -- any damage to the metadata
            return None

    def check_runs(self, chunks_done: int, num_runs: int, num_devices: int) -> None:
        """Refuse (one line) to resume a checkpoint padded for another device count."""
        saved, padded = self.saved_runs(chunks_done), padded_runs(num_runs, num_devices)
        if saved is not None and saved != padded:
            raise ConfigError(f"resume: the checkpoint holds {saved} runs (padded for its device count) but "
                              f"{num_devices} device(s) pad to {padded}; resume on the device count the sweep "
                              f"started with")

    def restore(self, chunks_done: int, like):
        """State saved after `chunks_done` chunks, shaped and placed like `like` (arrays)."""
        leaves, treedef = jax.tree.flatten(like)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                                _stored_leaves(like))
        stored = self.manager.restore(chunks_done, args=ocp.args.StandardRestore(abstract))
        return treedef.unflatten([stored.get(str(i), leaf) for i, leaf in enumerate(leaves)])

    def restore_leaves(self, chunks_done: int, indices, sharding) -> dict:
        """Only the leaves at these flat indices (str) of a checkpoint, placed by `sharding`:
        a partial read, e.g. a policy without the replay buffer."""
        args = {i: ocp.ArrayRestoreArgs(sharding=sharding) for i in indices}
        with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as checkpointer:
            return checkpointer.restore(self.directory / str(chunks_done) / "default", args=ocp.args.PyTreeRestore(
                dict.fromkeys(indices, 0), restore_args=args, partial_restore=True))

    def newest(self, read, log=print):
        """(chunks done, read(chunks done)) of the newest checkpoint that `read` reads back
        (reading it is what verifies it), or (None, None) when there is none. Newer ones that do
        not read are named in one line and marked unreadable; if none reads, ConfigError."""
        failed = []
        for step in sorted(set(self.manager.all_steps()) - self.unreadable, reverse=True):
            try:
                value = read(step)
            except Exception as e:  # noqa: BLE001 -- whatever the damage, the checkpoint is unusable
                failed.append(f"checkpoint {step} ({first_line(e)})")
                self.unreadable.add(step)
                continue
            if failed:
                log(f"unreadable: {'; '.join(failed)} in {self.directory}; going back to checkpoint {step}, "
                    f"the newest that reads")
            return step, value
        if failed:
            sweep = self.directory.parent
            raise ConfigError(f"checkpoints: none in {self.directory} reads ({'; '.join(failed)}); if another "
                              f"purejaxsparse version saved them, resume with it; to start the sweep over, "
                              f"remove {self.directory} and run: purejaxsparse resume {sweep}")
        return None, None

    def close(self) -> None:
        self.manager.close()


def _stored_leaves(state) -> dict:
    """The leaves worth storing, by flat index. orbax refuses zero-size arrays (Brax states hold
    some); they carry no data, so restore takes them from the freshly initialised state."""
    return {str(i): x for i, x in enumerate(jax.tree.leaves(state)) if x.size > 0}
