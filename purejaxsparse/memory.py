"""How much device memory a sweep's state takes, and whether it fits, before anything is allocated.

The state of one run is shaped with `jax.eval_shape(agent.init, key, hparams)` (nothing is
allocated or compiled) and its bytes are split by what the agent says they hold
(`Agent.state_groups`):

    replay     DQN's and SAC's replay (Atari: frames)
    params     every network's weights (online, target and critic copies)
    optimizer  Adam moments and step counts of every network, alpha's optimizer
    masks      the sparse masks
    other      everything else (env state, observations, running statistics, PRNG key)

A sweep holds `ceil(R / devices)` runs on each device (the runs axis is padded to a multiple
of the device count). Only the state is counted: the compiled chunk's temporaries (minibatches,
activations, PPO's rollout, evaluation envs) are not known before compiling, so a sweep is
refused when its state needs more than SAFETY (90%) of the memory available; `run_sweep` adds
the compiled chunk's own temporaries (XLA's memory analysis) once it has compiled.

Memory available: on GPU/TPU the allocator's limit of one local device less what is in use
(`memory_stats()`; JAX takes 75% of a GPU unless XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise);
on CPU, where every device shares the host's RAM, the host's MemAvailable. The environment
variable PUREJAXSPARSE_DEVICE_MEMORY (e.g. `80GB`, `141e9`, `24GiB`) or the `device_memory`
argument overrides it: bytes per device, or of the host for CPU devices.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import jax

from .agents.base import STATE_GROUPS
from .fields import ConfigError
from .store import padded_runs

CATEGORIES = STATE_GROUPS
SAFETY = 0.9
"""Fraction of the available memory the state may take; the rest is left for temporaries."""
ENV_VAR = "PUREJAXSPARSE_DEVICE_MEMORY"


def _nbytes(tree) -> int:
    # dtype.itemsize, not np.dtype(...): typed PRNG keys (key<fry>) are no numpy dtype
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def state_bytes(agent, key, hparams) -> dict[str, int]:
    """Bytes of ONE run's initial state by category (shapes only: nothing is allocated)."""
    groups = agent.state_groups(jax.eval_shape(agent.init, key, hparams))
    return {name: _nbytes(groups[name]) for name in CATEGORIES}


def parse_bytes(text, where: str = ENV_VAR) -> int:
    """`80GB`, `80 GiB`, `141e9`, `512M` or a plain byte count -> bytes (k/M/G/T are powers of
    1000, Ki/Mi/Gi/Ti of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]i?)?[bB]?\s*", str(text))
    if not match:
        raise ConfigError(f"{where}: got {text!r}; allowed: a size such as 80GB, 24GiB or 141e9 (bytes)")
    value, unit = float(match.group(1)), (match.group(2) or "").lower()
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
             "ki": 2 ** 10, "mi": 2 ** 20, "gi": 2 ** 30, "ti": 2 ** 40}[unit]
    if not 1 <= value * scale < 1e18:  # (1e400 parses to inf)
        raise ConfigError(f"{where}: got {text!r}; allowed: a positive size below 1 EB")
    return int(value * scale)


def _host_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory(device_memory=None) -> tuple[int | None, str]:
    """(bytes the state may use per device, or of the host for CPU devices; what they are).

    None bytes: unknown (no check is made)."""
    device = jax.local_devices()[0]
    platform = device.platform.upper()
    override = device_memory if device_memory is not None else os.environ.get(ENV_VAR)
    if override is not None:
        amount = override if isinstance(override, int) else parse_bytes(override)
        where = "the host" if device.platform == "cpu" else f"each {platform} device"
        source = f"set by {ENV_VAR}" if device_memory is None else "as given"
        return amount, f"{where} has {fmt_bytes(amount)} ({source})"
    if device.platform == "cpu":
        amount = _host_available()
        return amount, f"the host has {fmt_bytes(amount)} of RAM available (CPU devices)" if amount else "host memory unknown"
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 -- a backend without memory statistics
        stats = {}
    if "bytes_limit" not in stats:
        return None, f"{platform} memory unknown"
    amount = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    share = "; JAX's share, set by XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.75)" if device.platform == "gpu" else ""
    return amount, f"each {platform} device has {fmt_bytes(amount)} free ({device.device_kind}{share})"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """The state of a sweep: per run by category, the run and device counts, the memory there."""

    per_run: dict[str, int]
    num_runs: int
    num_devices: int
    shared: bool                  # the devices share one memory (CPU): totals are compared
    available: int | None         # bytes per device (shared: of the host); None: unknown
    where: str                    # what `available` is, for messages
    temporaries: int | None = None  # per device, of the compiled chunk (None: not compiled yet)

    @property
    def per_run_bytes(self) -> int:
        return sum(self.per_run.values())

    @property
    def padded_runs(self) -> int:
        return padded_runs(self.num_runs, self.num_devices)

    @property
    def runs_per_device(self) -> int:
        return self.padded_runs // self.num_devices

    @property
    def total_bytes(self) -> int:
        return self.padded_runs * self.per_run_bytes

    @property
    def needed(self) -> int:
        """Bytes compared with `available`: all runs (shared memory) or one device's runs, with
        the compiled chunk's temporaries once known."""
        temporaries = self.temporaries or 0
        if self.shared:
            return self.total_bytes + temporaries * self.num_devices
        return self.runs_per_device * self.per_run_bytes + temporaries

    @property
    def max_runs(self) -> int | None:
        """The most runs whose state (and temporaries, once compiled, taken as proportional to
        the runs) fits within SAFETY of the memory (None: unknown)."""
        if self.available is None:
            return None
        per_run = self.per_run_bytes + (self.temporaries or 0) / self.runs_per_device
        per_device = int(SAFETY * self.available // max(1, per_run))
        if self.shared:
            return per_device // self.num_devices * self.num_devices
        return per_device * self.num_devices

    @property
    def fits(self) -> bool:
        return self.available is None or self.needed <= SAFETY * self.available

    def breakdown(self) -> str:
        return ", ".join(f"{c} {fmt_bytes(self.per_run[c])}" for c in CATEGORIES)

    def table(self) -> str:
        """A few lines: per run and total by category, the memory available, the runs that fit."""
        runs = f"x {_runs(self.num_runs)}" + (f" ({self.padded_runs} padded)" if self.padded_runs != self.num_runs else "")
        width = max(10, len(runs))
        lines = ["memory of the sweep state (before compiling; the chunk's temporaries come on top):",
                 f"  {'':<10}{'per run':>10}  {runs:>{width}}"]
        for c in CATEGORIES + ("total",):
            b = self.per_run_bytes if c == "total" else self.per_run[c]
            lines.append(f"  {c:<10}{fmt_bytes(b):>10}  {fmt_bytes(b * self.padded_runs):>{width}}")
        if self.available is None:
            lines.append(f"  {self.where}: not checked")
        elif self.max_runs == 0:
            lines.append(f"  {self.where}: not even 1 run's state fits (within {SAFETY:.0%})")
        else:
            lines.append(f"  {self.where}: the state of at most {self.max_runs:,} runs fits "
                         f"(within {SAFETY:.0%})")
        return "\n".join(lines)

    def temporaries_note(self) -> str:
        """"; the chunk's temporaries take X per device: state + temporaries Y, ..." (or "")."""
        if self.temporaries is None:
            return ""
        fit = "" if self.max_runs is None else f"; at most {self.max_runs:,} runs fit"
        return (f"; its temporaries take {fmt_bytes(self.temporaries)} per device "
                f"(state + temporaries: {fmt_bytes(self.needed)}{fit})")

    def refusal(self) -> str:
        """One line: what the sweep needs, what there is, how many runs would fit, what to change."""
        per_device = "" if self.shared or self.num_devices == 1 else \
            f" ({self.runs_per_device} runs on each of {self.num_devices} devices)"
        temporaries = "" if self.temporaries is None else \
            f" and {fmt_bytes(self.temporaries)} of the compiled chunk's temporaries per device"
        need = "needs" if self.num_runs == 1 else "need"
        head = (f"memory: {_runs(self.num_runs)} {need} {fmt_bytes(self.total_bytes)} of device state{per_device} "
                f"({fmt_bytes(self.per_run_bytes)} per run: {self.breakdown()}){temporaries} "
                f"but {self.where}; ")
        largest = max(CATEGORIES, key=lambda c: self.per_run[c])
        shrink = {"replay": "reduce agent_config.buffer_size",
                  "params": "use smaller networks (agent_config.hidden)",
                  "optimizer": "use smaller networks (agent_config.hidden)",
                  "masks": "use smaller networks (agent_config.hidden)",
                  "other": "use fewer envs (agent_config.num_envs)"}[largest]
        if self.max_runs == 0:
            return head + f"not even 1 run fits within {SAFETY:.0%} of it ({shrink})"
        return head + (f"at most {self.max_runs:,} runs fit within {SAFETY:.0%} of it "
                       f"({shrink}, or sweep fewer runs, e.g. fewer seeds)")


def estimate(plan, device_memory=None, num_devices: int | None = None) -> MemoryEstimate:
    """The memory estimate of a Plan's sweep (nothing allocated), its runs spread over
    `num_devices` (default: every device JAX sees)."""
    one = jax.tree.map(lambda x: x[0], plan.hparams)
    per_run = state_bytes(plan.agent, plan.keys[0], one)
    available, where = available_memory(device_memory)
    shared = jax.local_devices()[0].platform == "cpu"
    return MemoryEstimate(per_run, plan.num_runs, num_devices or jax.device_count(), shared, available, where)


def with_compiled(est: MemoryEstimate, compiled) -> MemoryEstimate:
    """`est` with the temporaries (and outputs not aliased to the donated state) of a compiled
    chunk, from XLA's memory analysis; unchanged where the backend gives none."""
    try:
        stats = compiled.memory_analysis()
        extra = stats.temp_size_in_bytes + max(0, stats.output_size_in_bytes - stats.alias_size_in_bytes)
    except Exception:  # noqa: BLE001 -- backends without a memory analysis
        return est
    return dataclasses.replace(est, temporaries=int(extra))


def check(est: MemoryEstimate) -> None:
    """Raise ConfigError (one line) when the sweep's state does not fit."""
    if not est.fits:
        raise ConfigError(est.refusal())


def _runs(n: int) -> str:
    return f"{n:,} run" + ("" if n == 1 else "s")


def fmt_bytes(n) -> str:
    if n is None:
        return "?"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"
