"""What saving checkpoints costs a sweep: the same chunks with a save after every chunk and without.

The sweep engine (`run_sweep`) trains R DQN runs (CartPole, methods cycling dense/static/SET/RigL/
pruning at 90%) whose replays make the state at least 1 GB, for N chunks from a fresh start,
twice per repeat, round-robin: `checkpoint_every=1` (a save after every chunk, overlapping the
next chunk's compute) and `checkpoint_every=N` (one save, after the last chunk). Both wait for
their last save, so the difference is what the N - 1 saves in between cost. Compile time is
excluded (the engine times it apart); the fastest repeat of each is kept.

    python benchmarks/checkpoint_overlap.py --quick   # R = 35, 1.44 GB of state, 6 chunks (CPU)
    python benchmarks/checkpoint_overlap.py           # R = 260, 10.7 GB of state, 6 chunks (GPU)
    python benchmarks/checkpoint_overlap.py --smoke   # 5 runs, MLP 8, 2 chunks of 200 steps: runs end to end

Last line: `ratio: X` = seconds with a save after every chunk / seconds with saves off (goal:
at most 1.10 on a 2-core CPU, near 1.0 on a GPU).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import benchlib as bl

METHODS = ("dense", "static", "set", "rigl", "prune")


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="at least this many runs, rounded up to whole seeds of the five methods (quick: 32, full: 256, smoke: 2)")
    ap.add_argument("--buffer-size", type=int, default=None,
                    help="replay transitions per run (CartPole: 41 B each; quick and full: 1M, smoke: 1k)")
    ap.add_argument("--chunks", type=int, default=None, help="timed chunks (quick and full: 6, smoke: 2)")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="env steps per chunk (one evaluation each; quick: 5000, full: 20000, smoke: 200)")
    ap.add_argument("--dir", default=None, help="where the sweeps are written (default: a temporary directory)")
    args = ap.parse_args(argv)
    args.runs = args.runs or bl.preset(args, smoke=2, quick=32, full=256)
    args.buffer_size = args.buffer_size or bl.preset(args, smoke=1000, quick=1_000_000, full=1_000_000)
    args.chunks = args.chunks or bl.preset(args, smoke=2, quick=6, full=6)
    args.eval_every = args.eval_every or bl.preset(args, smoke=200, quick=5000, full=20000)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=2, full=2)
    return args


def study_config(args, checkpoint_every: int) -> dict:
    config = bl.dqn_config(hidden=bl.preset(args, smoke=[8], quick=[64, 64], full=[64, 64]),
                           buffer_size=args.buffer_size, learning_starts=min(1000, args.eval_every // 2),
                           total_steps=args.chunks * args.eval_every, eval_every=args.eval_every,
                           eval_episodes=bl.preset(args, smoke=2, quick=5, full=5),
                           hparams={"update_interval": 100, "end": args.eval_every})
    seeds = -(-args.runs // len(METHODS))
    config.update(chunk_evals=1, checkpoint_every=checkpoint_every,
                  method_defaults={"prune": {"start": 0}},
                  sweep={"seed": seeds, "method": list(METHODS), "sparsity": [0.9]})
    return config


def timed_sweep(config: dict, out: Path) -> tuple[float, float, int]:
    """(seconds of the chunk loop, compile seconds, state bytes) of one fresh sweep in `out`."""
    from purejaxsparse import memory
    from purejaxsparse.config import plan_sweep
    from purejaxsparse.sweep import run_sweep

    shutil.rmtree(out, ignore_errors=True)
    plan = plan_sweep(config)
    state_bytes = memory.estimate(plan, None, num_devices=1).total_bytes
    stats = run_sweep(plan, out, progress=False, log=lambda *_: None)
    return stats.run_seconds, stats.compile_seconds, state_bytes


def main(argv=None) -> float:
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    print(f"{bl.machine_line()}")
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="checkpoint_overlap-"))
    modes = {"save every chunk": 1, "saves off (one at the end)": args.chunks}
    best = {name: float("inf") for name in modes}
    compile_s, state_bytes = {}, 0
    try:
        for _ in range(args.repeats):
            for name, every in modes.items():
                seconds, compile_s[name], state_bytes = timed_sweep(study_config(args, every), root / f"every{every}")
                best[name] = min(best[name], seconds)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    runs = len(METHODS) * -(-args.runs // len(METHODS))
    print(f"{runs} runs, {args.chunks} chunks of {args.eval_every:,} env steps, state {state_bytes / 1e9:.2f} GB, "
          f"fastest of {args.repeats} repeat(s), compile excluded")
    steps = runs * args.chunks * args.eval_every
    rows = [[name, modes[name], compile_s[name], best[name], steps / best[name]] for name in modes]
    print(bl.table(["checkpoints", "checkpoint_every", "compile s", "chunks s", "env steps/s"], rows))
    ratio = best["save every chunk"] / best["saves off (one at the end)"]
    bl.print_ratio(args, ratio)
    return ratio


if __name__ == "__main__":
    main()
