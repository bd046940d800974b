"""Faults a sweep meets on a cluster: a damaged newest checkpoint, none readable, a second writer,
a full disk, SIGTERM, and bad options or YAML. Each ends in a sweep whose results.csv equals an
uninterrupted one, or in one line (exit 2, nothing changed); never in a traceback."""

import errno
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse import sweep
from purejaxsparse.store import SweepCheckpoints
from purejaxsparse.sweep_lock import LOCK, SweepLock
from purejaxsparse.cli import main
from purejaxsparse.config import plan_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

CONFIG = tiny_sweep_config(total_steps=1600, chunk_evals=1, sweep={"seed": 1, "method": ["dense", "set"]})
CHUNKS = 8
CLI = [sys.executable, "-m", "purejaxsparse.cli"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(directory of an uninterrupted sweep of CONFIG, CONFIG as a YAML file)."""
    root = tmp_path_factory.mktemp("faults")
    path = root / "c.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))  # sweep key order = run order
    sweep.run_sweep(plan_sweep(CONFIG), root / "ref", progress=False, log=lambda *_: None)
    return root / "ref", path


def files(directory: Path) -> dict:
    """Every file of a sweep directory but its lock, by relative path: its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != LOCK}


def damage(checkpoint: Path) -> None:
    """Cut every file of a checkpoint to half its size, as a full disk or a dying node leaves them."""
    for p in checkpoint.rglob("*"):
        if p.is_file():
            os.truncate(p, p.stat().st_size // 2)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def refused_by_every_reader(out: Path, tmp_path: Path, capsys, *says: str) -> None:
    """resume, robustness and export of `out` each end in one line (exit 2) containing `says`,
    and change nothing."""
    before = files(out)
    for argv in (["resume", str(out), "--no-progress"], ["robustness", str(out), "--sigma", "0"],
                 ["export", str(out), "--run", "0", "--out", str(tmp_path / "p.npz")]):
        assert main(argv) == 2, argv
        err = one_line(capsys.readouterr().err)
        assert all(text in err for text in says), err
    assert files(out) == before and not (tmp_path / "p.npz").exists()


def test_damaged_newest_checkpoint_falls_back(finished, tmp_path, capsys):
    ref, _ = finished
    out = tmp_path / "s"
    shutil.copytree(ref, out)
    damage(out / "checkpoints" / str(CHUNKS))
    # export reads the policy alone, and finds the sweep's final parameters gone
    assert main(["export", str(out), "--run", "0", "--out", str(tmp_path / "p.npz")]) == 2
    printed = capsys.readouterr()
    assert f"unreadable: checkpoint {CHUNKS} (" in printed.out
    assert f"incomplete ({CHUNKS - 1}/{CHUNKS} chunks)" in one_line(printed.err)
    # resume goes back to the newest checkpoint that reads, redoes the last chunk, and ends with
    # the rows of the uninterrupted sweep
    assert main(["resume", str(out), "--no-progress", "--no-report"]) == 0
    printed = capsys.readouterr()
    assert f"going back to checkpoint {CHUNKS - 1}" in printed.out and "Traceback" not in printed.err
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [str(CHUNKS - 1), str(CHUNKS)]


def test_no_readable_checkpoint_is_one_line_and_changes_nothing(finished, tmp_path, capsys):
    ref, _ = finished
    out = tmp_path / "s"
    shutil.copytree(ref, out)
    for step in (CHUNKS - 1, CHUNKS):
        damage(out / "checkpoints" / str(step))
    refused_by_every_reader(out, tmp_path, capsys, "none in", f"purejaxsparse resume {out}")


def test_checkpoints_of_another_state_layout_are_refused(finished, tmp_path, capsys):
    """Checkpoints whose state another version laid out (fields moved, leaves reordered) are
    refused by resume, robustness and export in one line, not restored leaf by leaf into the
    wrong places."""
    ref, _ = finished
    out = tmp_path / "s"
    shutil.copytree(ref, out)
    layout = (out / "state_layout.txt").read_text()
    assert ".opt_state.masks['params']['layer_0']['kernel'] (4, 16) bool" in layout  # a leaf per line
    lines = layout.splitlines()
    (out / "state_layout.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # the same leaves, reordered
    refused_by_every_reader(out, tmp_path, capsys, "another layout", f"remove {out / 'checkpoints'}")


def test_second_writer_is_refused_and_the_lock_dies_with_its_holder(finished, tmp_path, capsys):
    ref, _ = finished
    out = tmp_path / "s"
    shutil.copytree(ref, out)
    before = files(out)
    holder = subprocess.Popen(CLI[:1] + ["-c", "import sys, time\nfrom purejaxsparse.sweep_lock import SweepLock\n"
                                         "SweepLock(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(300)",
                                         str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n", holder.stderr.read().decode()[-2000:]
        t0 = time.perf_counter()
        assert main(["resume", str(out), "--no-progress", "--no-report"]) == 2
        assert time.perf_counter() - t0 < 30  # at once: before anything compiles
        assert f"process {holder.pid}" in one_line(capsys.readouterr().err)
        assert files(out) == before  # rows intact
    finally:
        holder.kill()  # kill -9
        holder.wait()
    SweepLock(out).release()  # the OS dropped the dead holder's lock


# the CLI quiets orbax's callbacks into its closed event loop (store.py); pytest swaps in its
# own sys.unraisablehook while a test runs, which reports them instead
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_is_one_line_and_stays_resumable(finished, tmp_path, capfd, monkeypatch):
    """On a small tmpfs when root may mount one, else with a writer that raises ENOSPC."""
    ref, path = finished
    disk = tmp_path / "disk"
    disk.mkdir()
    used = [sum(p.stat().st_blocks * 512 for p in paths if p.is_file())
            for paths in (ref.iterdir(), (ref / "checkpoints" / str(CHUNKS)).rglob("*"))]
    size = (used[0] + used[1] * 3 // 2) // 4096 * 4096  # room for the sweep files and one checkpoint, not two
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True).returncode == 0
    if not mounted:
        save = SweepCheckpoints.save

        def full(self, chunks_done, state):
            if chunks_done == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            save(self, chunks_done, state)
        monkeypatch.setattr(SweepCheckpoints, "save", full)
    out = disk / "s"
    try:
        assert main(["run", str(path), "--out", str(out), "--no-progress", "--no-report"]) == 1
        err = one_line(capfd.readouterr().err)
        assert err.startswith("purejaxsparse: error: disk: no space left on device while ") and \
            err.endswith(f"; free space and run: purejaxsparse resume {out}"), err
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        else:
            monkeypatch.undo()
        assert main(["resume", str(out), "--no-progress", "--no-report"]) == 0
        assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


def test_sigterm_mid_chunk_then_resume(finished, tmp_path):
    """SIGTERM mid-chunk, then a Ctrl-C while the process stops: the first signal decides (exit
    143) and the second changes nothing. The process ends without the interpreter's teardown
    (no exit handler runs): tearing the runtime down while XLA's threads may still compute the
    interrupted chunk can crash the process (a segmentation fault instead of 143)."""
    ref, path = finished
    out, marker = tmp_path / "s", tmp_path / "teardown-ran"
    cli = ("import atexit, pathlib, sys\n"
           f"atexit.register(pathlib.Path({str(marker)!r}).touch)\n"
           "from purejaxsparse.cli import main\n"
           "sys.exit(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", cli, "run", str(path), "--out", str(out), "--no-progress",
                             "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "results.csv").is_file() and len((out / "results.csv").read_text().splitlines()) > 1:
            break  # chunk 1's rows are written: its checkpoint is being saved, or chunk 2 runs
        time.sleep(0.01)
    was_running = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert was_running, "the sweep ended before it could be stopped"
    assert proc.returncode == 128 + signal.SIGTERM
    assert one_line(err.decode()) == f"interrupted: {out} is resumable: purejaxsparse resume {out}"
    assert not marker.exists(), "the interpreter's teardown ran after the interrupt"
    assert main(["resume", str(out), "--no-progress", "--no-report"]) == 0
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()


BAD = [  # (argv after the command, the flag or field the one line must name)
    (["report", "{ref}", "--reps", "-5"], "--reps"),
    (["report", "{ref}", "--reps", "nan"], "--reps"),
    (["report", "{ref}", "--seed", "-1"], "--seed"),
    (["report", "{ref}", "--seed", "1e20"], "--seed"),
    (["robustness", "{ref}", "--sigma", "nan"], "--sigma"),
    (["robustness", "{ref}", "--sigma", "0,-0.1"], "--sigma"),
    (["robustness", "{ref}", "--sigma", "inf"], "--sigma"),
    (["robustness", "{ref}", "--sigma", ","], "--sigma"),
    (["robustness", "{ref}", "--episodes", "0"], "--episodes"),
    (["robustness", "{ref}", "--episodes", "2.5"], "--episodes"),
    (["export", "{ref}", "--run", "0.5", "--out", "{tmp}/p.npz"], "--run"),
    (["export", "{ref}", "--run", "nan", "--out", "{tmp}/p.npz"], "--run"),
    (["export", "{ref}", "--run", "0", "--out", "{tmp}/p.npz", "--csr-max-density", "nan"], "--csr-max-density"),
    (["export", "{ref}", "--run", "0", "--out", "{tmp}/p.npz", "--csr-max-density", "-0.1"], "--csr-max-density"),
    (["run", "{cfg}", "--out", "{tmp}/o", "--device-memory", "1e400GB"], "--device-memory"),
    (["run", "{cfg}", "--out", "{tmp}/o", "--device-memory=-8GB"], "--device-memory"),
    (["run", "{cfg}", "--out", "{tmp}/o", "hparams.update_interval=10000000000"], "hparams.update_interval"),
    (["run", "{cfg}", "--out", "{tmp}/o", "total_steps=10000000000000"], "total_steps"),
    (["run", "{cfg}", "--out", "{tmp}/o", "agent_config.hidden=[10000000000]"], "agent_config.hidden"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep.seed=[0,5000000000]"], "sweep.seed"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep.seed=100000", "sweep.sparsity=[0.5,0.6,0.7,0.8,0.9]"],
     "1,000,000 combinations"),
    (["run", "{dup}", "--out", "{tmp}/o"], "line 6: duplicate key 'total_steps'"),
    (["run", "{cfg}", "--out", "{tmp}/o", "sweep={{seed: 1, seed: 2}}"], "sweep"),
]


@pytest.mark.parametrize("argv, field", BAD, ids=[" ".join(a[:1] + a[2:]) for a, _ in BAD])
def test_bad_options_and_yaml_are_one_line(finished, tmp_path, capsys, argv, field):
    ref, path = finished
    dup = tmp_path / "dup.yaml"
    dup.write_text("agent: dqn\nenv: CartPole-v1\ntotal_steps: 1000\neval_every: 100\neval_episodes: 2\n"
                   "total_steps: 2000\nsweep: {seed: 1}\n")
    before = files(ref)
    t0 = time.perf_counter()
    code = main([a.format(ref=ref, tmp=tmp_path, cfg=path, dup=dup) for a in argv])
    err = one_line(capsys.readouterr().err)
    assert code == 2 and field in err, err
    assert time.perf_counter() - t0 < 20  # a grid is counted, not expanded
    assert files(ref) == before and not (tmp_path / "o").exists() and not (tmp_path / "p.npz").exists()



# -- hostile files and paths: every command refuses them in one line before any work ----------
LAUGHS = "[" + ", ".join(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10 if i else ["x"] * 10) + "]"
                         for i in range(10)) + "]"
"""A billion laughs: 10 anchors of 10 aliases each, 10**10 values once expanded (one line of YAML)."""


def _config_text(extra: str = "") -> str:
    return yaml.safe_dump(CONFIG, sort_keys=False) + extra


def _refusing(path: Path) -> Path:
    """`path`, a directory, made to refuse new entries: immutable (EPERM, root included) where
    chattr works, else read-only by its mode (EACCES, for users other than root)."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("root without chattr +i: no directory refuses root's writes")
        path.chmod(0o555)
    return path


def _writable_again(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)
            p.chmod(0o755)


def _entries(directory: Path) -> dict:
    """Everything in a directory (files by their bytes, links by their target, folders)."""
    out = {}
    for p in sorted(directory.rglob("*")):
        key = str(p.relative_to(directory))
        out[key] = (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir")
    return out


def _write(name: str, data):
    return lambda d: (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


# (id, argv, set-up, exit code, what the one line says). argv: {cfg} a config file holding
# set-up "cfg", {ref} a copy of the finished sweep changed by set-up "ref", {tmp} a folder
# changed by set-up "tmp".
HOSTILE = [
    ("alias bomb", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text(f"x: {LAUGHS}\n")},
     2, "values (an alias counts as what it stands for)"),
    ("alias bomb in a sweep list", ["run", "{cfg}", "--out", "{tmp}/o"],
     {"cfg": f"laughs: {LAUGHS}\n" + _config_text().replace("sweep:\n", "sweep:\n  sparsity: *l9\n")},
     2, "an alias counts"),
    ("deep nesting", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text("x: " + "[" * 40 + "]" * 40)},
     2, "nested more than 32 levels"),
    ("very deep nesting", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text("x: " + "{a: " * 20000 + "}" * 20000)},
     2, "nest"),
    ("alias inside itself", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text("x: &n [*n]\n")}, 2, "contain"),
    ("key that is a list", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text("? [a, b]\n: 1\n")},
     2, "a key that is a list or a mapping"),
    ("top-level key not a string", ["run", "{cfg}", "--dry-run"], {"cfg": _config_text("1: 2\n")},
     2, "config: key 1 (int) is not a string"),
    ("nested key not a string", ["run", "{cfg}", "--dry-run"],
     {"cfg": _config_text().replace("hparams:\n", "hparams:\n  yes: 0.5\n")}, 2, "hparams: key True (bool)"),
    ("binary config", ["run", "{cfg}", "--dry-run"], {"cfg": b"\x89PNG\r\n\x1a\n" + bytes(range(256))},
     2, "not a YAML file"),
    ("NUL in the config", ["run", "{cfg}", "--dry-run"], {"cfg": "agent: dqn\x00\n"}, 2, "malformed YAML"),
    ("huge config", ["run", "{cfg}", "--dry-run"], {"cfg": "name: " + "x" * (5 << 20)}, 2, "MiB"),
    ("override alias bomb", ["run", "{cfg}", "--dry-run", "sweep.sparsity=" + LAUGHS.replace("x", "0.5")],
     {"cfg": _config_text()}, 2, "sweep.sparsity: more than"),
    ("override key not a string", ["run", "{cfg}", "--dry-run", "hparams={{3: 1}}"], {"cfg": _config_text()},
     2, "hparams: key 3"),
    ("width overflowing int32", ["run", "{cfg}", "--dry-run", "agent_config.width=3000"], {"cfg": _config_text()},
     2, "parameters"),
    ("width overflowing a float", ["run", "{cfg}", "--dry-run", "agent_config.width=1.0e+308"],
     {"cfg": _config_text()}, 2, "agent_config.width"),
    ("resume without runs.csv", ["resume", "{ref}"], {"ref": lambda d: (d / "runs.csv").unlink()}, 2, "no runs.csv"),
    ("resume of a binary results.csv", ["resume", "{ref}"], {"ref": _write("results.csv", bytes(range(256)))},
     2, "results.csv does not start with the header"),
    ("robustness without results.csv", ["robustness", "{ref}", "--sigma", "0"],
     {"ref": lambda d: (d / "results.csv").unlink()}, 2, "no results.csv"),
    ("report of an alias-bomb config.yaml", ["report", "{ref}"],
     {"ref": _write("config.yaml", _config_text(f"x: {LAUGHS}\n"))}, 2, "an alias counts"),
    ("report of a binary runs.csv", ["report", "{ref}"], {"ref": _write("runs.csv", bytes(range(128, 256)))},
     2, "not a text table"),
    ("export of a config.yaml with a bool key", ["export", "{ref}", "--run", "0", "--out", "{tmp}/p.npz"],
     {"ref": _write("config.yaml", _config_text("true: 1\n"))}, 2, "not a string"),
    ("merge of a deep config.yaml", ["merge", "{tmp}/m", "{ref}", "{ref}"],
     {"ref": _write("config.yaml", _config_text("x: " + "[" * 100 + "]" * 100))}, 2, "nest"),
    # paths in odd states: exit 1, naming the path and the fix, before anything compiles
    ("--out a dangling symlink", ["run", "{cfg}", "--out", "{tmp}/link"],
     {"cfg": _config_text(), "tmp": lambda t: (t / "link").symlink_to(t / "gone" / "deeper")}, 1, "symbolic link"),
    ("--out in a symlink loop", ["run", "{cfg}", "--out", "{tmp}/loop/o"],
     {"cfg": _config_text(), "tmp": lambda t: (t / "loop").symlink_to("loop")}, 1, "loops"),
    ("--out below a file", ["run", "{cfg}", "--out", "{tmp}/f/o"],
     {"cfg": _config_text(), "tmp": lambda t: (t / "f").write_text("")}, 1, "not a directory"),
    ("--out in a read-only directory", ["run", "{cfg}", "--out", "{tmp}/ro/o"],
     {"cfg": _config_text(), "tmp": lambda t: t.joinpath("ro").mkdir() or _refusing(t / "ro")}, 1, "make it writable"),
    ("export --out in a read-only directory", ["export", "{ref}", "--run", "0", "--out", "{tmp}/ro/p.npz"],
     {"tmp": lambda t: t.joinpath("ro").mkdir() or _refusing(t / "ro")}, 1, "make it writable"),
    ("export --out a dangling symlink", ["export", "{ref}", "--run", "0", "--out", "{tmp}/link"],
     {"tmp": lambda t: (t / "link").symlink_to(t / "gone")}, 1, "symbolic link"),
    ("resume of a read-only sweep", ["resume", "{ref}"], {"ref": _refusing},
     1, "make it writable and run: purejaxsparse resume"),
    ("report into a file", ["report", "{ref}"], {"ref": _write("report", "")}, 1, "is a file"),
    ("robustness into a read-only report/", ["robustness", "{ref}", "--sigma", "0"],
     {"ref": lambda d: d.joinpath("report").mkdir() or _refusing(d / "report")}, 1, "make it writable"),
    ("merge into a read-only directory", ["merge", "{tmp}/ro/m", "{ref}", "{ref}"],
     {"tmp": lambda t: t.joinpath("ro").mkdir() or _refusing(t / "ro")}, 1, "make it writable"),
]


@pytest.mark.parametrize("argv, setup, code, says", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_files_and_paths_are_one_line(finished, tmp_path, capsys, argv, setup, code, says):
    """Bad or hostile input files: exit 2; a path that cannot be written: exit 1, naming the
    path and the fix; either way one line, before anything compiles, nothing written or changed."""
    ref, _ = finished
    cfg, work, sweep_dir = tmp_path / "c.yaml", tmp_path / "w", tmp_path / "s"
    data = setup.get("cfg", "")
    cfg.write_bytes(data.encode() if isinstance(data, str) else data)
    work.mkdir()
    shutil.copytree(ref, sweep_dir)
    try:
        for name, directory in (("ref", sweep_dir), ("tmp", work)):
            if name in setup:
                setup[name](directory)
        before = _entries(tmp_path)
        t0 = time.perf_counter()
        got = main([a.format(cfg=cfg, ref=sweep_dir, tmp=work) for a in argv])
        err = one_line(capsys.readouterr().err)
        assert (got, says in err) == (code, True), err
        assert time.perf_counter() - t0 < 30  # refused before anything compiles
        assert _entries(tmp_path) == before
    finally:
        _writable_again(tmp_path)


# -- a signal while the chunk compiles ------------------------------------------------------------
def _raise_in_gc_callback(signum: int) -> None:
    """Deliver `signum` the way it lands while JAX compiles when a garbage collection runs JAX's
    gc callback: the handler runs inside the callback, which swallows whatever it raises."""
    def callback(phase, info):
        if phase == "start":
            signal.raise_signal(signum)
    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)


def _signal_while_compiling(monkeypatch, signum: int) -> None:
    """The sweep's chunk function, delivering `signum` (in a gc callback) as it compiles."""
    real = sweep.chunk_function

    class Lowered:
        def __init__(self, lowered):
            self.lowered = lowered

        def compile(self):
            _raise_in_gc_callback(signum)
            return self.lowered.compile()

    class Chunk:
        def __init__(self, jitted):
            self.jitted = jitted

        def lower(self, *args):
            return Lowered(self.jitted.lower(*args))

    monkeypatch.setattr(sweep, "chunk_function", lambda agent, chunk_evals: Chunk(real(agent, chunk_evals)))


@pytest.mark.parametrize("command, signum", [("run", signal.SIGTERM), ("resume", signal.SIGINT)],
                         ids=["run-SIGTERM", "resume-SIGINT"])
def test_signal_while_compiling_stops_the_sweep(finished, tmp_path, capsys, monkeypatch, command, signum):
    """A signal that arrives while the chunk compiles (even one whose raise a callback swallowed)
    ends the command right after compiling, in one line with 128 + the signal's number, before
    anything is written; resume then ends with the rows of the uninterrupted sweep."""
    ref, path = finished
    out = tmp_path / "s"
    if command == "resume":
        shutil.copytree(ref, out)
        shutil.rmtree(out / "checkpoints" / str(CHUNKS))  # resume redoes the last chunk
    before = files(out) if out.exists() else None
    _signal_while_compiling(monkeypatch, signum)
    argv = ["run", str(path), "--out", str(out)] if command == "run" else ["resume", str(out)]
    assert main(argv + ["--no-progress", "--no-report"]) == 128 + signum
    err = one_line(capsys.readouterr().err)
    if command == "run":
        assert err == "interrupted before the sweep started; nothing was written" and not out.exists()
        return
    assert err == f"interrupted: {out} is resumable: purejaxsparse resume {out}" and files(out) == before
    monkeypatch.undo()
    assert main(["resume", str(out), "--no-progress", "--no-report"]) == 0
    assert (out / "results.csv").read_text() == (ref / "results.csv").read_text()
