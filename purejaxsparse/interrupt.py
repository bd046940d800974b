"""SIGINT (Ctrl-C) and SIGTERM (what SLURM and Kubernetes send before they kill): stop at once,
at whatever moment they come, and never be swallowed.

`stop_on_signal()` turns both into `Interrupted`, raised where the main thread is. The signal is
also recorded, for a raise can land where it is swallowed: inside a callback whose exceptions
Python only prints (a garbage-collection callback, e.g. JAX's while it compiles, or a __del__);
such a swallowed raise is not printed (the unraisable hook drops it) and `SignalStop.check`
raises it again where the sweep checks (right after compiling, between chunks, after a save).
While a save is in progress (`SignalStop.deferred`) the raise waits until it is done, so a
checkpoint is never cut short. Only the first signal counts: once the process is stopping,
later ones are ignored, so a second Ctrl-C cannot interrupt the clean-up; a context opened with
`ending=True` (the CLI's, around the whole command) leaves both signals ignored when it closes,
as the process then ends (no traceback from exit handlers). Nested contexts share the outermost
one. `end_process` ends an interrupted process without the interpreter's teardown. jax-free.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the work; every chunk a sweep finished is saved. exit_code:
    128 + the signal's number, as a shell reports it (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class SignalStop:
    """The record of the first SIGINT or SIGTERM (`received`), and the handler that makes it."""

    def __init__(self):
        self.received: int | None = None
        self._deferred = 0
        self.closed = False

    def handle(self, signum, frame) -> None:
        if self.received is not None or self.closed:
            return  # already stopping, or the block is over: a signal changes nothing
        self.received = signum
        if not self._deferred:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise Interrupted if a signal came (also one whose raise something swallowed)."""
        if self.received is not None:
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self):
        """A signal that comes in this block raises when it ends (e.g. a checkpoint's save)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        if not self._deferred:
            self.check()

    def unraisable_hook(self, hook):
        """sys.unraisablehook that drops an Interrupted something swallowed (it is recorded)."""
        def quiet(unraisable):
            if not isinstance(unraisable.exc_value, Interrupted):
                hook(unraisable)
        return quiet


_ACTIVE: SignalStop | None = None


@contextlib.contextmanager
def stop_on_signal(ending: bool = False):
    """Install the handlers of SIGINT and SIGTERM for this block and yield its SignalStop (the
    outer block's when nested). Outside the main thread (where Python runs no signal handler)
    it installs nothing and yields a stop that is never signalled. ending: the process ends
    with this block, so both signals stay ignored after it."""
    global _ACTIVE
    if _ACTIVE is not None:
        yield _ACTIVE
        return
    if threading.current_thread() is not threading.main_thread():
        yield SignalStop()
        return
    stop, hook = SignalStop(), sys.unraisablehook
    previous = {s: signal.signal(s, stop.handle) for s in SIGNALS}
    quiet = sys.unraisablehook = stop.unraisable_hook(hook)
    _ACTIVE = stop
    try:
        yield stop
    finally:
        stop.closed = True
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN if ending else previous[s])
        _ACTIVE = None
        if sys.unraisablehook is quiet:  # else a hook installed since wraps it: leave both
            sys.unraisablehook = hook


def end_process(code: int) -> None:
    """End an interrupted process at once, without the interpreter's teardown. A signal stops
    a sweep mid-chunk while XLA's threads still compute that chunk, and tearing the runtime
    down under them can crash the process (a segmentation fault, exit 139, instead of 130 or
    143). The caller has saved and closed everything it keeps."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
