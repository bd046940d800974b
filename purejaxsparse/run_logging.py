"""Live logging of every run of a sweep to TensorBoard and Weights & Biases (`--log`).

Why here and how: the scalars are results.csv's rows, which `sweep.run_sweep` hands to its
`on_chunk` callback on process 0 after each chunk is written and checkpointed. Logging therefore
happens on the host, between chunks, and never inside the compiled program: it cannot change
what a sweep computes (results.csv is the same with and without it), and it costs only the
time to write a few events per run and chunk.

- TensorBoard (tensorboardX, no TensorFlow): `DIR/tensorboard/<run name>/` per run, one event
  per evaluation holding results.csv's metric columns at step = env steps, and the run's
  runs.csv row in TensorBoard's hparams view; `DIR/tensorboard/sweep/` holds the sweep's env
  steps per second, one point per chunk.
- W&B (optional `wandb` package): one W&B run per sweep run, grouped by the sweep, with the
  runs.csv row as its config and the same scalars at the same steps; offline (files in
  `DIR/wandb/`, upload later with `wandb sync`) unless an API key is set or WANDB_MODE says.

Which loggers: `logging: {tensorboard: true, wandb: true}` in a config and `--log NAME` on
`run` add up; `run` records them in DIR/config.yaml, so `resume` goes on with them, and
`--log` on `resume` adds more. `--log none` turns all of them off (on `run`: for the sweep; on
`resume`: for that process).

Resume: a series goes on with no point twice and none missing. At its first write a logger
finds what it already holds per run (TensorBoard: it reads its own event files back; W&B: the
last step per run recorded in DIR/wandb/purejaxsparse-logged.json after each chunk), writes the
results.csv rows past that (the chunks a killed process left unlogged), and from then on skips
every step it holds (the chunks a resume computes again after an unreadable checkpoint).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import socket
import struct
import sys
import time
import uuid
from pathlib import Path

from .fields import ConfigError

LOGGERS = ("tensorboard", "wandb")
"""What `--log` and the config's `logging` mapping may name."""
NONE = "none"
TENSORBOARD_DIR, WANDB_DIR = "tensorboard", "wandb"
SWEEP_SERIES = "sweep"
"""DIR/tensorboard/sweep/: the sweep's own series (env steps per second, per chunk)."""
STEPS_PER_SECOND = "env_steps_per_second"
WANDB_RECORD = "purejaxsparse-logged.json"
MAX_CHOICES = 32
"""A runs.csv column with at most this many values gets them as its choices in TensorBoard's
hparams view (checkboxes); one with more (e.g. run) is filtered by a range or pattern."""
WANDB_INSTALL = 'pip install -e ".[wandb]"'


# ------------------------------------------------------------------------------ which loggers
def config_loggers(config: dict) -> tuple[str, ...]:
    """The loggers a config's `logging` mapping turns on (validated: ConfigError in one line)."""
    value = config.get("logging")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"logging: got {value!r}; allowed: a mapping of {', '.join(LOGGERS)} to true or false")
    for name, on in value.items():
        if name not in LOGGERS:
            raise ConfigError(f"logging.{name}: unknown logger; allowed: {', '.join(LOGGERS)}")
        if not isinstance(on, bool):
            raise ConfigError(f"logging.{name}: got {on!r}; allowed: true or false")
    return tuple(name for name in LOGGERS if value.get(name))


def requested(flags: list[str] | None, config: dict) -> tuple[str, ...]:
    """The loggers of a run or resume: the config's plus `--log`'s (repeatable, comma-separated),
    or none with `--log none`. Checks that each can start (W&B: its package is installed), so a
    bad request is refused before anything is compiled or written."""
    names = [n.strip().lower() for flag in flags or [] for n in str(flag).split(",") if n.strip()]
    for name in names:
        if name not in LOGGERS + (NONE,):
            raise ConfigError(f"--log: got {name!r}; allowed: {', '.join(LOGGERS + (NONE,))}")
    if NONE in names:
        if len(set(names)) > 1:
            raise ConfigError(f"--log: got {','.join(names)}; allowed: {NONE} alone, or loggers")
        return ()
    chosen = set(config_loggers(config)) | set(names)
    loggers = tuple(name for name in LOGGERS if name in chosen)
    if "wandb" in loggers:
        _import_wandb()
    if "tensorboard" in loggers:
        _import_tensorboardx()
    return loggers


def with_loggers(config: dict, loggers: tuple[str, ...]) -> dict:
    """`config` whose `logging` mapping names exactly `loggers` (none: no `logging` key), so the
    sweep's config.yaml records them for `resume`."""
    out = {k: v for k, v in config.items() if k != "logging"}
    if loggers:
        out["logging"] = {name: True for name in loggers}
    return out


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise ConfigError(f"--log wandb: the wandb package is not installed; install it with: {WANDB_INSTALL} "
                          f"(or leave W&B out: --log none)") from None
    return wandb


def _import_tensorboardx():
    try:
        import tensorboardX
    except ImportError:
        raise ConfigError("--log tensorboard: the tensorboardX package is not installed; "
                          "install it with: pip install -e .") from None
    return tensorboardX


# ------------------------------------------------------------------------------ the callback
@contextlib.contextmanager
def sweep_logging(loggers, out_dir, plan, note=print):
    """Yields the `on_chunk` callback for run_sweep that feeds `loggers` (None without any).
    Call on process 0 only. On a normal exit, rows of results.csv the loggers do not hold yet are
    written (a sweep already complete never calls on_chunk); either way they are closed."""
    if not loggers:
        yield None
        return
    logger = SweepLogger(loggers, out_dir, plan, note)
    try:
        yield logger.on_chunk
        logger.catch_up()
    finally:
        logger.close()


class SweepLogger:
    """Feeds each chunk's rows to the chosen loggers; its first write catches up from results.csv
    (see the module docstring: what a resume logs)."""

    def __init__(self, loggers, out_dir, plan, note=print):
        self.out_dir = Path(out_dir)
        self.name = plan.config.get("name") or self.out_dir.name
        self.backends = []
        self.caught_up = False
        self.seconds = 0.0
        """Host time spent logging (what logging adds to the sweep's wall time)."""
        if "tensorboard" in loggers:
            self.backends.append(_TensorBoard(self.out_dir))
            note(f"tensorboard: every run is logged to {self.out_dir / TENSORBOARD_DIR}; view it with: "
                 f"tensorboard --logdir {self.out_dir / TENSORBOARD_DIR}")
        if "wandb" in loggers:
            self.backends.append(_WandB(self.out_dir, self.name, note))

    def on_chunk(self, rows, chunks_done, env_steps_per_second) -> None:
        """run_sweep's callback: log the chunk's rows (after catching up, the first time) and its
        env steps per second at its last evaluation step."""
        t0 = time.perf_counter()
        step = max(int(row["step"]) for row in rows) if rows else None
        self.catch_up(before=min(int(row["step"]) for row in rows) if rows else None)
        self._write(rows, step, env_steps_per_second)
        self.seconds += time.perf_counter() - t0

    def catch_up(self, before: int | None = None) -> None:
        """Once: write the rows of results.csv that a logger does not hold yet (only those before
        step `before`: the chunk being logged follows with its steps per second)."""
        if self.caught_up:
            return
        self.caught_up = True
        path = self.out_dir / "results.csv"
        if not path.is_file():
            return
        rows = [row for row in _complete_rows(path) if before is None or int(row["step"]) < before]
        self._write(rows, None, None)

    def _write(self, rows, step, env_steps_per_second) -> None:
        """Each logger writes; one that fails (a full disk, a lost connection) says so in one line
        and stops, and the sweep goes on (a later `resume --log NAME` catches it up)."""
        for backend in list(self.backends):
            try:
                backend.write(rows, step, env_steps_per_second)
            except Exception as e:  # noqa: BLE001  (logging must never end a sweep)
                self.backends.remove(backend)
                first = (str(e).splitlines() or [type(e).__name__])[0]
                print(f"{backend.name} logging stopped ({first}); the sweep goes on; resume with "
                      f"--log {backend.name} to catch up", file=sys.stderr)
                with contextlib.suppress(Exception):
                    backend.close()

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def _complete_rows(path: Path) -> list[dict]:
    """results.csv's complete lines as dicts (a last line without its newline is left out)."""
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(text.splitlines()))


def run_rows(out_dir: Path) -> list[dict]:
    """runs.csv's rows with typed values (numbers, True/False as bools, empty cells left out):
    each run's hyperparameters for TensorBoard's hparams view and W&B's config."""
    with open(Path(out_dir) / "runs.csv", newline="") as f:
        return [{k: _typed(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def run_name(run: dict, num_runs: int) -> str:
    """A run's name in TensorBoard's run list and W&B, e.g. run007-rigl-s0.9-seed2."""
    width = max(3, len(str(num_runs - 1)))
    return f"run{int(run['run']):0{width}d}-{run['method']}-s{float(run['sparsity']):g}-seed{run['seed']}"


def _typed(text: str):
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _metrics(row: dict) -> dict[str, float]:
    """A results.csv row's metric columns (all after `step`) as floats: finite as 1/0, an empty
    cell as NaN. The same whether the row came from on_chunk or from results.csv's text."""
    keys = list(row)
    out = {}
    for key in keys[keys.index("step") + 1:]:
        v = row[key]
        if isinstance(v, str):
            v = {"True": 1.0, "False": 0.0, "": math.nan}.get(v, v)
        out[key] = float(v)
    return out


def _by_run(rows) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for row in rows:
        out.setdefault(int(row["run"]), []).append(row)
    return out


# ------------------------------------------------------------------------------ TensorBoard
class _TensorBoard:
    """DIR/tensorboard/<run name>/: one event per evaluation (every metric column as a scalar,
    step = env steps) and the run's hparams; DIR/tensorboard/sweep/: env steps per second.

    Events are appended synchronously (no writer threads or open files between chunks), one
    file per process and series. What a series already holds is read back from its event files
    at the first write: the newest step, and whether its hparams are there."""

    name = "tensorboard"

    def __init__(self, out_dir: Path):
        self.root = out_dir / TENSORBOARD_DIR
        self.out_dir = out_dir
        self.series: dict = {}      # run index (or SWEEP_SERIES) -> _EventSeries
        self.hparams = None         # (experiment summary, {run: session start summary})

    def _open(self):
        if self.series:
            return
        runs = run_rows(self.out_dir)
        for run in runs:
            self.series[int(run["run"])] = _EventSeries(self.root / run_name(run, len(runs)))
        self.series[SWEEP_SERIES] = _EventSeries(self.root / SWEEP_SERIES)
        self.runs = {int(run["run"]): run for run in runs}

    def write(self, rows, step, env_steps_per_second) -> None:
        from tensorboardX.summary import scalar
        self._open()
        for r, run_rows_ in _by_run(rows).items():
            series = self.series[r]
            events = [] if series.has_hparams else self._hparams_events(r)
            for row in run_rows_:
                s = int(row["step"])
                if s > series.last_step:
                    events.append(_event(s, [scalar(k, v).value[0] for k, v in _metrics(row).items()]))
                    series.last_step = s
            series.append(events)
            series.has_hparams = True
        if step is not None and env_steps_per_second is not None:
            sweep = self.series[SWEEP_SERIES]
            if step > sweep.last_step:
                sweep.append([_event(step, list(scalar(STEPS_PER_SECOND, env_steps_per_second).value))])
                sweep.last_step = step

    def _hparams_events(self, r: int) -> list:
        """The run's hparams (TensorBoard's hparams view): the experiment (every runs.csv column,
        with the values the sweep has, and the metric tags) and this run's values."""
        from tensorboardX.proto.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionStartInfo
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

        def summary(tag, **content):
            data = HParamsPluginData(version=0, **content).SerializeToString()
            meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=data))
            return Summary.Value(tag=tag, metadata=meta)

        if self.hparams is None:
            infos = []
            for name in dict.fromkeys(k for run in self.runs.values() for k in run):
                values = sorted({run[name] for run in self.runs.values() if name in run}, key=str)
                kind = ("DATA_TYPE_BOOL" if all(isinstance(v, bool) for v in values) else
                        "DATA_TYPE_STRING" if any(isinstance(v, str) for v in values) else "DATA_TYPE_FLOAT64")
                info = HParamInfo(name=name, type=DataType.Value(kind))
                if len(values) <= MAX_CHOICES:  # a checkbox per value in TensorBoard's filter
                    info.domain_discrete.extend([str(v) if kind == "DATA_TYPE_STRING" else v for v in values])
                infos.append(info)
            metrics = [k for k in self._metric_tags()]
            experiment = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=m)) for m in metrics])
            self.hparams = summary("_hparams_/experiment", experiment=experiment), {i.name: i.type for i in infos}
        experiment, kinds = self.hparams
        start = SessionStartInfo(start_time_secs=time.time())
        for name, value in self.runs[r].items():
            if kinds[name] == DataType.Value("DATA_TYPE_BOOL"):
                start.hparams[name].bool_value = bool(value)
            elif kinds[name] == DataType.Value("DATA_TYPE_STRING"):
                start.hparams[name].string_value = str(value)
            else:
                start.hparams[name].number_value = float(value)
        return [_event(0, [experiment]), _event(0, [summary("_hparams_/session_start_info", session_start_info=start)])]

    def _metric_tags(self) -> list[str]:
        path = self.out_dir / "results.csv"
        with open(path, newline="") as f:
            header = next(csv.reader(f))
        return header[header.index("step") + 1:]

    def close(self) -> None:
        pass  # every write is complete when `write` returns


def _event(step: int, values):
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    return Event(wall_time=time.time(), step=int(step), summary=Summary(value=values))


class _EventSeries:
    """One TensorBoard run directory: this process's event file in it (created at its first
    append) and what the directory already held (last step, hparams written)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = None
        self.last_step, self.has_hparams = -1, False
        for event in read_events(directory):
            if event.HasField("summary"):
                tags = {v.tag for v in event.summary.value}
                if "_hparams_/session_start_info" in tags:
                    self.has_hparams = True
                if tags - {"_hparams_/experiment", "_hparams_/session_start_info"}:
                    self.last_step = max(self.last_step, event.step)

    def append(self, events) -> None:
        if not events:
            return
        from tensorboardX.proto.event_pb2 import Event
        if self.path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = self.directory / (f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}."
                                          f"{os.getpid()}.purejaxsparse")
            events = [Event(wall_time=time.time(), file_version="brain.Event:2")] + list(events)
        with open(self.path, "ab") as f:
            f.write(b"".join(_record(e.SerializeToString()) for e in events))


def _record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC32C, the data, its masked CRC32C."""
    from tensorboardX.record_writer import masked_crc32c
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def read_events(directory) -> list:
    """Every event in a TensorBoard run directory's event files, in file order; a record cut
    short or damaged (a process killed while writing) ends its file."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c
    events = []
    directory = Path(directory)
    if not directory.is_dir():
        return events
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            end = pos + 12 + length + 4
            if (struct.unpack("<I", data[pos + 8:pos + 12])[0] != masked_crc32c(header) or end > len(data)
                    or struct.unpack("<I", data[end - 4:end])[0] != masked_crc32c(data[pos + 12:end - 4])):
                break
            event = Event()
            event.ParseFromString(data[pos + 12:end - 4])
            events.append(event)
            pos = end
    return events


# ------------------------------------------------------------------------------ W&B
class _WandB:
    """One W&B run per sweep run (id: the sweep's id and the run index, so a resume continues
    the same W&B runs), grouped by the sweep; config: the runs.csv row; history: the metric
    columns at step = env steps, and env steps per second at each chunk's last step.

    What each run holds is recorded after every chunk in DIR/wandb/purejaxsparse-logged.json
    (W&B's offline files are not read back); with it, the sweep's W&B id."""

    name = "wandb"

    def __init__(self, out_dir: Path, sweep_name: str, note=print):
        self.wandb = _import_wandb()
        self.out_dir, self.sweep_name = out_dir, sweep_name
        self.mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_key() else "offline")
        self.runs: dict = {}
        self.record_path = out_dir / WANDB_DIR / WANDB_RECORD
        if self.mode == "offline":
            note(f"wandb: offline (no API key set): runs are written to {out_dir / WANDB_DIR}; "
                 f"upload them with: wandb sync {out_dir / WANDB_DIR}/offline-run-*")
        else:
            note(f"wandb: {self.mode}: project {os.environ.get('WANDB_PROJECT', 'purejaxsparse')}, "
                 f"group {self.group}")

    @property
    def group(self) -> str:
        name = self.out_dir.resolve().name
        return (name if self.sweep_name in name else f"{self.sweep_name}-{name}")[:128]

    def _open(self):
        if self.runs:
            return
        record = json.loads(self.record_path.read_text()) if self.record_path.is_file() else {}
        self.sweep_id = record.get("sweep_id") or uuid.uuid4().hex[:12]
        self.logged = {int(k): v for k, v in record.get("logged", {}).items()}
        rows = run_rows(self.out_dir)
        settings = self.wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True,
                                       save_code=False, disable_job_creation=True)
        (self.out_dir / WANDB_DIR).mkdir(parents=True, exist_ok=True)
        for run in rows:
            r = int(run["run"])
            self.runs[r] = self.wandb.init(
                project=os.environ.get("WANDB_PROJECT", "purejaxsparse"), group=self.group,
                name=run_name(run, len(rows)), id=f"{self.sweep_id}-run{r}", resume="allow",
                config={**run, "sweep": self.sweep_name, "sweep_dir": str(self.out_dir.resolve())},
                dir=str(self.out_dir), mode=self.mode, reinit="create_new", settings=settings)
            self.logged.setdefault(r, -1)
        self._save_record()

    def write(self, rows, step, env_steps_per_second) -> None:
        self._open()
        for r, run_rows_ in _by_run(rows).items():
            for row in run_rows_:
                s = int(row["step"])
                if s <= self.logged[r]:
                    continue
                values = _metrics(row)
                if s == step and env_steps_per_second is not None:
                    values[f"{SWEEP_SERIES}/{STEPS_PER_SECOND}"] = float(env_steps_per_second)
                self.runs[r].log(values, step=s)
                self.logged[r] = s
        self._save_record()

    def _save_record(self) -> None:
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sweep_id": self.sweep_id, "logged": self.logged}))
        os.replace(tmp, self.record_path)

    def close(self) -> None:
        for run in self.runs.values():
            with contextlib.suppress(Exception):
                run.finish()
        self.runs = {}


def _wandb_key() -> bool:
    """Whether an API key is set (WANDB_API_KEY, or `wandb login`'s entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    try:
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False

