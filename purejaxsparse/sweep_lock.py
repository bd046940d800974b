"""Who writes a sweep directory, and what a refused or failed write tells the user.

One process writes a sweep at a time (`SweepLock`: an flock the OS drops however its holder
ends); a new sweep needs an empty --out (`check_out_dir`); a write that fails for want of space
or permission becomes one line saying how to go on (`disk_errors`): resume the sweep when it is
resumable (its SWEEP_FILES are there), else run it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
from pathlib import Path

from . import disk
from .fields import ConfigError
from .results import SWEEP_FILES

LOCK = ".lock"
"""The lock file in a sweep directory; it holds the PID of the process writing the sweep."""


def resumable(directory: Path) -> bool:
    """Whether `directory` holds a sweep that `purejaxsparse resume` can continue."""
    return all((Path(directory) / name).is_file() for name in SWEEP_FILES)


def check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that exists with anything in it (but a lock file a killed run left)."""
    if holds_files(out_dir):
        raise ConfigError(f"--out: {out_dir} exists and is not empty; choose a new directory "
                          f"(or continue it with: purejaxsparse resume {out_dir})")


def holds_files(directory: Path) -> bool:
    """Whether `directory` exists with anything in it but a lock file."""
    directory = Path(directory)
    return directory.exists() and (not directory.is_dir() or any(p.name != LOCK for p in directory.iterdir()))


class SweepLock:
    """The one writer of a sweep directory: an exclusive flock on DIR/.lock, which holds the
    writer's PID. The OS drops the lock when its process ends, however it ends (kill -9 too), so
    it never goes stale. A second writer gets ConfigError (one line naming the holder) and has
    written nothing. new: the directory is to hold a new sweep, so must be empty."""

    def __init__(self, directory: Path, new: bool = False):
        directory = Path(directory)
        with disk_errors(directory, "writing the lock file"):
            directory.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise ConfigError(f"{directory} is being written by process {holder} (a run or resume of this "
                              f"sweep); one process writes a sweep at a time: wait for it, or stop it") from None
        try:
            if new:
                check_out_dir(directory)
            with disk_errors(directory, "writing the lock file"):
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        os.close(self.fd)  # closing the file drops the lock


@contextlib.contextmanager
def disk_errors(directory: Path, doing: str):
    """Turn a disk error (disk.ADVICE) raised while `doing` something in the sweep `directory`
    into a DiskError that says how to go on; the sweep stays resumable (results.csv is cut back
    to the newest checkpoint and orbax drops an uncommitted one when the sweep resumes)."""
    def then() -> str:
        gc.collect()  # finalise the writes orbax abandoned now, not noisily at exit
        return (f"run: purejaxsparse resume {directory}" if resumable(directory) else
                "run the sweep again" + (" with a new --out" if holds_files(directory) else ""))

    with disk.disk_errors(f"in {directory}", doing, then):
        yield
