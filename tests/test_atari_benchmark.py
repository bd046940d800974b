"""Smoke test of benchmarks/atari_throughput.py: it imports, parses its --quick and full settings,
and its bookkeeping (window sizes, replay cap, optimizer steps and mask updates per window) is right.

Nothing is timed or run here, as in tests/test_benchmarks.py (see BENCHMARKS.md, "Atari
throughput (EnvPool)", for the measured numbers and the commands).
"""

import importlib
import sys
import types
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def mod():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("atari_throughput")
    finally:
        sys.path.remove(str(BENCH))


def test_parses_quick_and_full(mod):
    quick, full = mod.parse_args(["--quick"]), mod.parse_args([])
    assert quick.quick and not full.quick
    assert quick.runs == [1, 2] and full.runs == [1, 4, 16, 64]
    assert (quick.batch_size, full.batch_size) == (4, 32) and full.buffer_size == 100_000
    assert quick.repeats >= 1 and full.repeats >= 1 and not quick.breakdown
    # the untimed warm-up window passes learning_starts, so every timed window trains
    for a in (quick, full):
        assert a.learning_starts <= a.steps * a.envs
    with pytest.raises(SystemExit):
        mod.parse_args(["--quick", "--steps", "10", "--learning-starts", "32"])


def test_window_sizes_and_replay_cap(mod):
    quick, full = mod.parse_args(["--quick"]), mod.parse_args([])
    assert mod.pool_steps(quick, 1, 4) == 2000 and mod.pool_steps(quick, 2, 4) == 1000
    assert mod.pool_steps(full, 1, 4) == 5000 and mod.pool_steps(full, 64, 4) == 781
    assert mod.pool_steps(full, 10_000, 4) == 250  # never fewer than 250 steps
    assert mod.replay_frames(full, 1) == 100_000
    capped = mod.replay_frames(full, 64)  # 64 x 100k frames would be 42 GiB > --max-replay-gib 32
    assert 70_000 < capped < 100_000 and 64 * capped * (84 * 84 + 16) <= 32 * 2**30


def test_optimizer_steps_and_mask_updates_per_window(mod):
    # as DQN.iteration counts: train at t >= first_train_iter every train_every iterations,
    # grad_step = (t - first) // train_every + 1; masks update before grad steps whose counter
    # grad_step - 1 is a multiple of the interval (start 0; counter 0 included, as rigl)
    pipe = object.__new__(mod.Pipeline)
    pipe.steps = 100
    pipe.agent = types.SimpleNamespace(schedule=types.SimpleNamespace(first_train_iter=31),
                                       static=types.SimpleNamespace(train_every=4))
    assert pipe.updates_in_window(0, 25) == (18, 1)  # t = 31, 35, ..., 99: grad steps 1..18, counter 0
    for w in (1, 2, 3, 4):
        assert pipe.updates_in_window(w, 25) == (25, 1)
