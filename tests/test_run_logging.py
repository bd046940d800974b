"""Live logging (`--log tensorboard|wandb`, purejaxsparse/loggers): the event files and W&B runs hold, per
run, exactly results.csv's evaluations and runs.csv's hyperparameters; a killed and resumed sweep
has no step twice and none missing; results.csv is the same with and without logging; asking for
W&B without its package, or for an unknown logger, is one line (exit 2) before anything runs."""

import csv
import json
import math
import shutil
import struct
import sys

import numpy as np
import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse import loggers as run_logging
from purejaxsparse.cli import main
from purejaxsparse.config import plan_sweep
from purejaxsparse.sweep import run_sweep

CONFIG = tiny_sweep_config(total_steps=1600, chunk_evals=2, sweep={"seed": 1, "method": ["dense", "rigl"]})
CHUNKS, STEPS_PER_CHUNK = 4, 400  # 2 runs x 8 evaluations, 2 per chunk


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """An uninterrupted sweep of CONFIG without logging."""
    out = tmp_path_factory.mktemp("plain") / "s"
    run_sweep(plan_sweep(CONFIG), out, progress=False, log=quiet)
    return out


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """An uninterrupted sweep of CONFIG run with `purejaxsparse run --log tensorboard`."""
    root = tmp_path_factory.mktemp("logged")
    (root / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    out = root / "s"
    assert main(["run", str(root / "c.yaml"), "--out", str(out), "--no-progress", "--no-report",
                 "--log", "tensorboard"]) == 0
    return out


# -- reading back ---------------------------------------------------------------------------
def results_by_run(out):
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    metrics = header[header.index("step") + 1:]
    by_run = {}
    for row in rows:
        by_run.setdefault(int(row["run"]), []).append(row)
    return by_run, metrics


def as_float(text):
    return {"True": 1.0, "False": 0.0, "": math.nan}[text] if text in ("True", "False", "") else float(text)


def runs_csv(out):
    with open(out / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def tensorboard_scalars(out) -> dict:
    """{run index: {tag: [(step, value)]}} read back by TensorBoard's own reader (tensorboard,
    the test extra)."""
    runs = runs_csv(out)
    found = {}
    for run in runs:
        directory = out / "tensorboard" / run_logging.run_name(run, len(runs))
        if directory.is_dir():
            found[int(run["run"])] = _scalars(directory)
    return found


def tensorboard_events(directory) -> list:
    """Every event of a run directory, read by TensorBoard's own loader (the test extra)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    return [event for path in sorted(directory.glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(path)).Load()]


def _scalars(directory) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def tensorboard_hparams(directory) -> tuple[list[str], dict]:
    """(the experiment's hparam names, this run's values) from the hparams plugin's events."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    experiment, values = [], {}
    for event in tensorboard_events(directory):
        for v in event.summary.value:
            if v.metadata.plugin_data.plugin_name != "hparams":
                continue
            data = HParamsPluginData.FromString(v.metadata.plugin_data.content)
            if data.HasField("experiment"):
                experiment = [info.name for info in data.experiment.hparam_infos]
            if data.HasField("session_start_info"):
                for name, value in data.session_start_info.hparams.items():
                    values[name] = getattr(value, value.WhichOneof("kind"))
    return experiment, values


def typed(text):
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def assert_logged_as_results(out, scalars):
    """Each run's series: exactly results.csv's steps (each once, in order) and values."""
    by_run, metrics = results_by_run(out)
    assert sorted(scalars) == sorted(by_run)
    for run, rows in by_run.items():
        steps = [int(row["step"]) for row in rows]
        for metric in metrics:
            series = scalars[run][metric]
            assert [s for s, _ in series] == steps, (run, metric)
            want = np.array([as_float(row[metric]) for row in rows], np.float32)
            np.testing.assert_array_equal(np.array([v for _, v in series], np.float32), want, err_msg=f"{run} {metric}")


def chunk_rows(out, chunk):
    """The rows of results.csv that run_sweep hands to on_chunk after `chunk` (1-based), with
    typed values as run_sweep hands them."""
    by_run, _ = results_by_run(out)
    return [{k: typed(v) for k, v in row.items()} for rows in by_run.values() for row in rows
            if STEPS_PER_CHUNK * (chunk - 1) < int(row["step"]) <= STEPS_PER_CHUNK * chunk]


def event_files(out):
    return sorted((out / "tensorboard").rglob("events.out.tfevents.*"))


# -- TensorBoard ----------------------------------------------------------------------------
def test_tensorboard_holds_results_and_hparams(logged):
    assert_logged_as_results(logged, tensorboard_scalars(logged))
    runs = runs_csv(logged)
    for run in runs:
        directory = logged / "tensorboard" / run_logging.run_name(run, len(runs))
        names, values = tensorboard_hparams(directory)
        assert names == [k for k in run if any(other[k] != "" for other in runs)], names
        assert values == {k: typed(v) for k, v in run.items() if v != ""}
    assert sorted(p.name for p in (logged / "tensorboard").iterdir()) == ["run000-dense-s0-seed0",
                                                                           "run001-rigl-s0.8-seed0", "sweep"]
    speed = _scalars(logged / "tensorboard" / "sweep")["env_steps_per_second"]  # one point per chunk
    assert [s for s, _ in speed] == [STEPS_PER_CHUNK * c for c in range(1, CHUNKS + 1)] and all(v > 0 for _, v in speed)


def test_results_are_the_same_with_and_without_logging(logged, plain):
    assert (logged / "results.csv").read_bytes() == (plain / "results.csv").read_bytes()
    assert (logged / "runs.csv").read_bytes() == (plain / "runs.csv").read_bytes()
    assert yaml.safe_load((logged / "config.yaml").read_text())["logging"] == {"tensorboard": True}
    assert "logging" not in yaml.safe_load((plain / "config.yaml").read_text())


def test_killed_before_logging_and_resumed_twice(plain, tmp_path):
    """Process 1 logs chunks 1-2 and is killed after chunk 3's checkpoint, before logging it.
    Process 2 resumes from checkpoint 3: its first chunk (4) catches chunk 3 up from results.csv.
    Process 3 went back past unreadable checkpoints and computes chunks 3-4 again: it writes
    nothing. In the end every step is there once."""
    out = tmp_path / "s"
    shutil.copytree(plain, out)
    plan = plan_sweep(yaml.safe_load((out / "config.yaml").read_text()))
    for process, chunks in enumerate([(1, 2), (4,), (3, 4)], start=1):
        before = event_files(out) if process == 3 else None
        logger = run_logging.SweepLogger(("tensorboard",), out, plan)
        for chunk in chunks:
            logger.on_chunk(chunk_rows(out, chunk), chunk, 1000.0 * chunk)
        if process == 1:
            assert all([s for s, _ in series["eval_return"]] == [200, 400, 600, 800]
                       for series in tensorboard_scalars(out).values())
    assert event_files(out) == before  # process 3 had nothing to write: no file at all
    assert_logged_as_results(out, tensorboard_scalars(out))
    speed = _scalars(out / "tensorboard" / "sweep")["env_steps_per_second"]
    assert speed == [(400, 1000.0), (800, 2000.0), (1600, 4000.0)]  # chunk 3's died with its process


def test_resume_of_a_complete_sweep_catches_up(plain, tmp_path, capsys):
    """`resume --log tensorboard` of a finished sweep that never logged writes all of results.csv
    (nothing to compute: a complete sweep calls no on_chunk)."""
    out = tmp_path / "s"
    shutil.copytree(plain, out)
    assert main(["resume", str(out), "--no-progress", "--no-report", "--log", "tensorboard"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert_logged_as_results(out, tensorboard_scalars(out))
    assert main(["resume", str(out), "--no-progress", "--no-report", "--log", "tensorboard"]) == 0
    assert_logged_as_results(out, tensorboard_scalars(out))  # a second catch-up adds nothing


# -- bad requests: one line, exit 2, nothing written ----------------------------------------
@pytest.mark.parametrize("options, overrides, says", [
    (["--log", "tensorbored"], [], "--log: got 'tensorbored'"),
    (["--log", "none,wandb"], [], "--log"),
    ([], ["logging.tb=true"], "logging.tb: unknown logger"),
    ([], ["logging.tensorboard=maybe"], "logging.tensorboard: got 'maybe'"),
    ([], ["logging=[tensorboard]"], "logging: got"),
])
def test_bad_logging_requests_are_one_line(tmp_path, capsys, options, overrides, says):
    path, out = tmp_path / "c.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(path), "--out", str(out), "--no-progress", *options, *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err, err
    assert not out.exists()


def test_wandb_without_its_package_is_one_line_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    path, out = tmp_path / "c.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(path), "--out", str(out), "--no-progress", "--log", "tensorboard,wandb"]) == 2
    printed = capsys.readouterr()
    assert len(printed.err.strip().splitlines()) == 1 and 'pip install -e ".[wandb]"' in printed.err
    assert "compiled" not in printed.out and not out.exists()


# -- W&B ------------------------------------------------------------------------------------
def wandb_runs(out) -> dict:
    """{run id: (the run record, history [(step, {key: value})])} of DIR/wandb's offline runs,
    every offline directory of one id (one per process that logged it) in order."""
    from wandb.proto import wandb_internal_pb2 as pb
    found = {}
    for path in sorted((out / "wandb").glob("offline-run-*/run-*.wandb")):
        for record in _leveldb_records(path.read_bytes(), pb.Record):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                found.setdefault(record.run.run_id, [record.run, []])
                run_id = record.run.run_id
            elif kind == "history":
                items = {i.nested_key[0] if i.nested_key else i.key: json.loads(i.value_json) for i in record.history.item}
                found[run_id][1].append((int(items.pop("_step")), {k: v for k, v in items.items() if not k.startswith("_")}))
    return found


def _leveldb_records(data: bytes, kind):
    """W&B's .wandb files: a 7-byte header, then LevelDB log records in 32 KiB blocks."""
    assert data[:4] == b":W&B"
    pos, block, part = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, piece = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        part += data[pos:pos + length]
        pos += length
        if piece in (1, 4):  # FULL or LAST
            yield kind.FromString(part)
            part = b""


def test_wandb_offline_one_run_per_sweep_run(plain, tmp_path, capsys, monkeypatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    out = tmp_path / "s"
    shutil.copytree(plain, out)
    plan = plan_sweep(yaml.safe_load((out / "config.yaml").read_text()))
    by_run, metrics = results_by_run(out)

    # process 1 logs chunks 1-2 live and dies after chunk 3's checkpoint, before logging it;
    # process 2 resumes from checkpoint 3: its first chunk (4) catches chunk 3 up from results.csv;
    # process 3 went back past unreadable checkpoints and computes chunks 3-4 again: nothing new
    for process, chunks in enumerate([(1, 2), (4,), (3, 4)]):
        logger = run_logging.SweepLogger(("wandb",), out, plan, note=print)
        for chunk in chunks:
            logger.on_chunk(chunk_rows(out, chunk), chunk, 1000.0 * chunk)
        logger.close()
        line = capsys.readouterr().out.strip().splitlines()[0]
        assert line.startswith(f"wandb: offline (no API key set): runs are written to {out / 'wandb'}"), line

    found = wandb_runs(out)
    runs = runs_csv(out)
    assert len(found) == len(runs) == 2
    by_name = {record.display_name: (record, history) for record, history in found.values()}
    for run in runs:
        record, history = by_name[run_logging.run_name(run, len(runs))]
        config = {u.key: json.loads(u.value_json) for u in record.config.update if u.key != "_wandb"}
        assert config.pop("sweep") == "tiny" and config.pop("sweep_dir") == str(out.resolve())
        assert config == {k: typed(v) for k, v in run.items() if v != ""}
        assert record.run_group == "tiny-s"
        rows = by_run[int(run["run"])]
        assert [s for s, _ in history] == [int(row["step"]) for row in rows]  # each once, none missing
        for metric in metrics:
            np.testing.assert_array_equal(np.array([values[metric] for _, values in history], np.float32),
                                          np.array([as_float(row[metric]) for row in rows], np.float32))
        speeds = {step: values["sweep/env_steps_per_second"] for step, values in history
                  if "sweep/env_steps_per_second" in values}
        assert speeds == {STEPS_PER_CHUNK: 1000.0, 2 * STEPS_PER_CHUNK: 2000.0, 4 * STEPS_PER_CHUNK: 4000.0}
