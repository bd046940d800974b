"""Throughput and memory of one sweep program as the number of runs R grows: 1, 2, 4, ...

Each R runs in a fresh subprocess (so peak RSS is that R's alone): build R DQN runs (methods
cycling through dense, static, SET, RigL and pruning at 90%), compile the sweep engine's chunk
function (compile time excluded and printed apart), run chunk 0 (replay warm-up) untimed,
then time the next chunks (fastest kept). Reported per R: env steps/s over all runs, the
per-run rate, peak RSS of the process, the size of the batched training state, XLA's
memory analysis of the compiled chunk (temporary buffers), and the device allocator's peak
where the backend has one (GPU). Doubling stops when the time budget would be exceeded, a
child fails (e.g. out of memory), or the next R would not fit in memory (predicted from the
measured growth).

    python benchmarks/scaling.py --quick     # MLP 64x64, R up to 512, ~4 minute budget (CPU)
    python benchmarks/scaling.py             # MLP 512x512 (the paper's), 15 minute budget (GPU)
    python benchmarks/scaling.py --smoke     # MLP 8, R = 1 only, 100-step chunks: runs end to end

Last line: `ratio: X` = steps/s at the largest R reached / steps/s at R = 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

METHODS = ("dense", "static", "set", "rigl", "prune")


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="smoke: 8, quick: 64 64, full: 512 512")
    ap.add_argument("--batch-size", type=int, default=None, help="smoke: 8, quick: 64, full: 128")
    ap.add_argument("--buffer-size", type=int, default=None, help="smoke: 300, else 100000")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="env steps per timed chunk (one evaluation each; smoke: 100, quick: 1000, full: 2000)")
    ap.add_argument("--max-runs", type=int, default=None, help="smoke: 1, quick: 512, full: 16384")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds in all (smoke: 120, quick: 240, full: 900)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # internal: measure one R
    args = ap.parse_args(argv)
    args.hidden = args.hidden or bl.preset(args, smoke=[8], quick=[64, 64], full=[512, 512])
    args.batch_size = args.batch_size or bl.preset(args, smoke=8, quick=64, full=128)
    args.buffer_size = args.buffer_size or bl.preset(args, smoke=300, quick=100_000, full=100_000)
    args.eval_every = args.eval_every or bl.preset(args, smoke=100, quick=1000, full=2000)
    args.eval_episodes = bl.preset(args, smoke=2, quick=10, full=10)
    args.max_runs = args.max_runs or bl.preset(args, smoke=1, quick=512, full=16384)
    args.budget = args.budget or bl.preset(args, smoke=120.0, quick=240.0, full=900.0)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=2, full=2)
    return args


def child(args) -> dict:
    """Measure one R (in this fresh process) and return the numbers."""
    import jax
    import numpy as np

    R = args.child
    config = bl.dqn_config(hidden=args.hidden, batch_size=args.batch_size, buffer_size=args.buffer_size,
                           learning_starts=min(1000, args.eval_every), total_steps=100 * args.eval_every,
                           eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                           hparams={"sparsity": 0.9, "update_interval": 1000, "end": 100_000})
    agent = bl.build_agent(config)
    keys, hps = bl.run_hparams(config, [METHODS[r % len(METHODS)] for r in range(R)],
                               per_method={"prune": {"start": 1000}})
    chunks = bl.Chunks(agent, 1, batched=True)
    states = chunks.init(keys, hps)
    state_bytes = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(states))
    chunks.compile(states, hps)
    try:
        mem = chunks.compiled.memory_analysis()
        temp_bytes = int(getattr(mem, "temp_size_in_bytes", 0))
    except Exception:  # noqa: BLE001
        temp_bytes = -1
    states, _ = chunks(states, hps, 0)  # warm-up (replay fill)
    best = float("inf")
    for rep in range(args.repeats):
        t = time.perf_counter()
        states, _ = chunks(states, hps, 1 + rep)
        best = min(best, time.perf_counter() - t)
    dev = bl.device_memory() or {}
    return {"runs": R, "compile_s": chunks.compile_seconds, "chunk_s": best,
            "steps_per_s": R * chunks.steps_per_chunk / best, "peak_rss_mib": bl.peak_rss_mib(),
            "state_mib": state_bytes / 2**20, "temp_mib": temp_bytes / 2**20,
            "device_peak_mib": dev.get("peak_bytes_in_use", 0) / 2**20 if dev else None,
            "device_limit_mib": dev.get("bytes_limit", 0) / 2**20 if dev else None}


def available_mib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    if args.child is not None:
        print(json.dumps(child(args)))
        return None
    print(f"# scaling: DQN on CartPole-v1, MLP {args.hidden}, batch {args.batch_size}, replay "
          f"{args.buffer_size:,}, methods cycling {', '.join(METHODS)} at 90%; {args.eval_every} env steps "
          f"per run per timed chunk (+1 evaluation), fastest of {args.repeats}; budget {args.budget:.0f} s")
    print(f"# {bl.machine_line()}")
    start, results, last_child_s = time.perf_counter(), [], 0.0
    R = 1
    base = [sys.executable, str(Path(__file__).resolve())] + [a for a in (argv or sys.argv[1:])]
    while R <= args.max_runs:
        elapsed = time.perf_counter() - start
        if results:
            # the next child takes about its compile plus 2x the runtime of the last
            if elapsed + 2.2 * last_child_s > args.budget:
                print(f"# stop: R={R} would exceed the {args.budget:.0f} s budget")
                break
            prev = results[-1]
            per_run = (prev["peak_rss_mib"] - results[0]["peak_rss_mib"]) / max(prev["runs"] - 1, 1)
            if prev["device_limit_mib"]:
                need = prev["device_peak_mib"] * R / prev["runs"]
                if need > 0.9 * prev["device_limit_mib"]:
                    print(f"# stop: R={R} needs about {need:,.0f} MiB of device memory")
                    break
            elif per_run * (R - prev["runs"]) > 0.8 * available_mib():
                print(f"# stop: R={R} would need about {per_run * (R - prev['runs']):,.0f} MiB more RAM")
                break
        load = bl.load_average()
        t = time.perf_counter()
        proc = subprocess.run(base + ["--child", str(R)], capture_output=True, text=True)
        last_child_s = time.perf_counter() - t
        if proc.returncode != 0:
            print(f"# stop: R={R} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]} ")
            break
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["load"] = load
        results.append(out)
        print(f"#   R={R}: {out['steps_per_s']:,.0f} steps/s, peak RSS {out['peak_rss_mib']:,.0f} MiB "
              f"({last_child_s:.0f} s)", flush=True)
        R *= 2
    rows = []
    one = results[0]["steps_per_s"]
    for r in results:
        rows.append([r["runs"], f"{r['compile_s']:.1f}", f"{r['steps_per_s']:,.0f}",
                     f"{r['steps_per_s'] / r['runs']:,.0f}", f"{r['steps_per_s'] / one:.2f}x",
                     f"{r['peak_rss_mib']:,.0f}", f"{r['state_mib']:,.1f}", f"{r['temp_mib']:,.1f}",
                     "" if r["device_peak_mib"] is None else f"{r['device_peak_mib']:,.0f}", r["load"]])
    print()
    print(bl.table(["runs", "compile s", "env steps/s", "per run", "vs R=1", "peak RSS MiB", "state MiB",
                    "XLA temp MiB", "device peak MiB", "load average"], rows))
    ratio = results[-1]["steps_per_s"] / one
    bl.print_ratio(args, ratio)
    return ratio


if __name__ == "__main__":
    main()
