"""Paths that cannot be read or written, said in one line that names the path and what to do.

Every command reports a failed read or write the same way: `DiskError` (the CLI exits with
code 1), whose message is the OS's reason, the path and the fix (`ADVICE`, by errno). Outputs
are checked before any work is done (`check_dir`, `check_file`: a directory that cannot be
made or written, a dangling symbolic link, a parent that is a file, a read-only or immutable
directory), so that a sweep is never compiled only to find its output unusable; a write that
fails later (a full disk) becomes the same line (`disk_errors`), and so does any other OSError
that reaches the CLI (`describe`). jax-free.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from .errors import ConfigError

ADVICE = {
    errno.ENOSPC: "free space", errno.EDQUOT: "free space", errno.EFBIG: "free space",
    errno.EROFS: "make it writable", errno.EACCES: "make it writable", errno.EPERM: "make it writable",
    errno.ENOENT: "make sure its directory exists",
    errno.ENOTDIR: "choose a path whose every parent is a directory",
    errno.EISDIR: "choose a path that is not a directory",
    errno.EEXIST: "remove what is in the way or choose another path",
    errno.ELOOP: "fix the symbolic link loop or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EIO: "check the disk",
    errno.EMFILE: "raise the open-file limit (ulimit -n)", errno.ENFILE: "raise the open-file limit (ulimit -n)",
}
"""errno of a failed read or write -> what the user can do about it."""


class DiskError(Exception):
    """A read or write failed for want of space or permission, or on a path in an odd state;
    the message is one line: what was being done, where, and how to go on."""


def disk_errno(e: BaseException | None) -> int | None:
    """The ADVICE errno of `e` or of what caused it: an OSError's, or the one tensorstore (under
    orbax) writes into its message; None when it is none of them."""
    while e is not None:
        match = re.search(r"os_error_code='(\d+)'", str(e))
        code = e.errno if isinstance(e, OSError) else int(match.group(1)) if match else None
        if code in ADVICE:
            return code
        e = e.__cause__ or e.__context__
    return None


def message(code: int, doing: str, path, then: str = "") -> str:
    """The one line of a failed read or write: `disk: REASON while DOING PATH; FIX[ and THEN]`."""
    fix = "make it readable" if doing.startswith("reading") and code in (errno.EACCES, errno.EPERM) else ADVICE[code]
    return f"disk: {os.strerror(code).lower()} while {doing} {path}; {fix}" + (f" and {then}" if then else "")


def describe(e: OSError) -> str:
    """The one line of an OSError that no caller turned into a DiskError (its path, if known)."""
    code = e.errno if e.errno in ADVICE else None
    where = e.filename if e.filename is not None else "a file"
    if code is None:
        return f"disk: {(e.strerror or str(e) or type(e).__name__).lower()} on {where}; check the path and try again"
    return message(code, "using", where)


@contextlib.contextmanager
def disk_errors(path, doing: str, then: Callable[[], str] | None = None):
    """Turn a disk error (an errno of ADVICE) raised while `doing` something to `path` into a
    DiskError; then(): what to do once it is fixed (worked out when it happens)."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 -- filtered by disk_errno
        code = disk_errno(e)
        if code is None:
            raise
        raise DiskError(message(code, doing, path, then() if then else "")) from None


def _dangling(path: Path) -> str | None:
    """The one line for a symbolic link that leads nowhere (or round in a loop), else None."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
        return None
    except OSError as e:
        target = os.readlink(path)
        how = "loops" if e.errno == errno.ELOOP else f"points to {target}, which does not exist"
        return f"disk: {path} is a symbolic link that {how}; remove the link or create what it points to"


def check_dir(path, doing: str = "writing into", then: str = "") -> None:
    """Refuse (DiskError) an output directory that cannot be made or written, before any work:
    make it (and its missing parents) and a file in it, then remove all that was made, so
    nothing is left behind. Catches EACCES, EPERM (e.g. chattr +i), EROFS, ENOTDIR, ELOOP,
    ENAMETOOLONG and dangling symbolic links along the path."""
    path = Path(path)
    made = []
    try:
        missing, p = [], path
        while not p.exists():
            dangling = _dangling(p)
            if dangling:
                raise DiskError(dangling + (f" and {then}" if then else ""))
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        with disk_errors(path, doing, lambda: then):
            for d in reversed(missing):
                os.mkdir(d)
                made.append(d)
            if not path.is_dir():
                raise DiskError(f"disk: {path} is a file, not a directory; move it away or choose another path"
                                + (f" and {then}" if then else ""))
            fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
            os.close(fd)
            os.unlink(probe)
    except ValueError as e:  # a NUL character in the path
        raise DiskError(f"disk: {str(path)[:80]!r} is not a usable path ({e})") from None
    finally:
        for d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d)


def check_file(path, doing: str = "writing", then: str = "") -> None:
    """Refuse an output file that cannot be written, before any work: a directory in its place
    is bad input (ConfigError); its directory as `check_dir` checks it, a dangling link or a
    file it may not replace are DiskErrors."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--out: {path} is a directory; allowed: a file name (e.g. policy.npz)")
    dangling = _dangling(path)
    if dangling:
        raise DiskError(dangling + (f" and {then}" if then else ""))
    check_dir(path.parent, "writing into", then)
    if path.is_file():
        with disk_errors(path, doing, lambda: then):
            if not os.access(path, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

