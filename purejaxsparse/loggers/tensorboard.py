"""TensorBoard logging of a sweep's runs (the package docstring says what is logged, when and why).

Events are appended synchronously as TFRecords (tensorboardX's protos and CRC), one file per
process and series, opened only while a chunk is written: no writer thread or open file per run,
however many runs a sweep has. What a series already holds is read back from its own files.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from .base import SWEEP_SERIES, STEPS_PER_SECOND, TENSORBOARD_DIR, by_run, metric_values, run_name, run_rows

MAX_CHOICES = 32
"""A runs.csv column with at most this many values gets them as its choices in TensorBoard's
hparams view (checkboxes); one with more (e.g. run) is filtered by a range or pattern."""

class TensorBoardLogger:
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
        for r, run_rows_ in by_run(rows).items():
            series = self.series[r]
            events = [] if series.has_hparams else self._hparams_events(r)
            for row in run_rows_:
                s = int(row["step"])
                if s > series.last_step:
                    events.append(_event(s, [scalar(k, v).value[0] for k, v in metric_values(row).items()]))
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
        from ..results import RESULTS_FILE, read_header
        header = read_header(self.out_dir / RESULTS_FILE)
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
