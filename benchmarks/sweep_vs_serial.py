"""R DQN runs as ONE vmapped program vs the same R runs trained one after another.

Both sides run the same config and the same steps: the sweep side is the sweep engine's own
compiled chunk (jit of vmap of `agent.run`); the serial side is one jitted single run, compiled
once and reused for every run (each run blocked on before the next starts). Runs cycle through
dense, static, SET and RigL at 90% sparsity (mask updates every 1000 optimizer steps), and each
chunk includes its evaluations, as in a real sweep. Chunk 0 (with the replay warm-up) is the
untimed warm-up; the next chunks are timed, the fastest repeat reported. Compile time is
excluded from the timings and printed apart.

The rows with a 1k and a 100k replay buffer check that buffer writes stay in place under vmap
(a 100k buffer carried through `lax.scan` must not make the sweep slower per step).

    python benchmarks/sweep_vs_serial.py --quick     # 16 runs, 2-core CPU, ~2 minutes
    python benchmarks/sweep_vs_serial.py             # 256 runs (GPU)
    python benchmarks/sweep_vs_serial.py --smoke     # 2 runs, MLP 8, one 100-step chunk: runs end to end

Last line: `ratio: X` = serial time / sweep time for the largest buffer.
"""

from __future__ import annotations

import time

import benchlib as bl

METHODS = ("dense", "static", "set", "rigl")


def parse_args(argv=None):
    """The settings of a measurement (sizes resolved for --smoke, --quick or full mode)."""
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="R (smoke: 2, quick: 16, full: 256)")
    ap.add_argument("--serial-runs", type=int, default=None,
                    help="time the serial side on this many of the R runs and scale to R "
                         "(every run executes the same compiled program; default: all R in "
                         "--quick, 32 in full mode)")
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="smoke: 8, else 64 64")
    ap.add_argument("--batch-size", type=int, default=None, help="smoke: 8, else 64")
    ap.add_argument("--buffer-sizes", type=int, nargs="+", default=None, help="smoke: 300, else 1000 100000")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="env steps per evaluation, also the replay warm-up (smoke: 100, else 1000)")
    ap.add_argument("--chunk-evals", type=int, default=None,
                    help="evaluations per timed chunk (smoke: 1, quick: 2, full: 5)")
    args = ap.parse_args(argv)
    args.runs = args.runs or bl.preset(args, smoke=2, quick=16, full=256)
    args.serial_runs = min(args.runs, args.serial_runs
                           or bl.preset(args, smoke=args.runs, quick=args.runs, full=32))
    args.hidden = args.hidden or bl.preset(args, smoke=[8], quick=[64, 64], full=[64, 64])
    args.batch_size = args.batch_size or bl.preset(args, smoke=8, quick=64, full=64)
    args.buffer_sizes = args.buffer_sizes or bl.preset(args, smoke=[300], quick=[1000, 100_000],
                                                       full=[1000, 100_000])
    args.eval_every = args.eval_every or bl.preset(args, smoke=100, quick=1000, full=1000)
    args.chunk_evals = args.chunk_evals or bl.preset(args, smoke=1, quick=2, full=5)
    args.eval_episodes = bl.preset(args, smoke=2, quick=10, full=10)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=2, full=2)
    return args


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    R, n_serial, chunk_evals, repeats = args.runs, args.serial_runs, args.chunk_evals, args.repeats

    print(f"# sweep_vs_serial: {R} DQN runs on CartPole-v1, MLP {args.hidden}, batch {args.batch_size}, "
          f"{chunk_evals * args.eval_every} env steps per run per timed chunk, {repeats} timed chunks "
          f"(fastest kept)")
    print(f"# {bl.machine_line()}")
    rows, ratio = [], None
    for buffer_size in args.buffer_sizes:
        config = bl.dqn_config(hidden=args.hidden, batch_size=args.batch_size, buffer_size=buffer_size,
                               learning_starts=args.eval_every, total_steps=100 * args.eval_every,
                               eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                               hparams={"sparsity": 0.9, "update_interval": 1000, "end": 100_000})
        agent = bl.build_agent(config)
        methods = [METHODS[r % len(METHODS)] for r in range(R)]
        keys, hps = bl.run_hparams(config, methods)
        steps = chunk_evals * agent.eval_every  # per run per chunk
        load_before = bl.load_average()

        # --- the sweep: one program, R runs
        sweep = bl.Chunks(agent, chunk_evals, batched=True)
        states = sweep.init(keys, hps)
        sweep.compile(states, hps)
        states, _ = sweep(states, hps, 0)  # warm-up (and replay fill)
        sweep_times = []
        for rep in range(repeats):
            t = time.perf_counter()
            states, _ = sweep(states, hps, 1 + rep)
            sweep_times.append(time.perf_counter() - t)
        del states

        # --- serial: one compiled single run, reused for each run in turn
        single = bl.Chunks(agent, chunk_evals, batched=False)
        picked = list(range(n_serial))  # methods cycle with period 4: the first runs cover them all
        run_hps = [bl.take(hps, r) for r in picked]
        run_states = [single.init(keys[r], h) for r, h in zip(picked, run_hps)]
        single.compile(run_states[0], run_hps[0])
        for i in range(n_serial):
            run_states[i], _ = single(run_states[i], run_hps[i], 0)  # warm-up chunk of every run
        serial_times = []
        for rep in range(repeats):
            t = time.perf_counter()
            for i in range(n_serial):
                run_states[i], _ = single(run_states[i], run_hps[i], 1 + rep)  # blocks
            serial_times.append((time.perf_counter() - t) * R / n_serial)
        del run_states

        t_sweep, t_serial = min(sweep_times), min(serial_times)
        ratio = t_serial / t_sweep
        rows.append([buffer_size, R, f"{sweep.compile_seconds:.1f}", t_sweep, f"{R * steps / t_sweep:,.0f}",
                     f"{single.compile_seconds:.1f}", t_serial, f"{R * steps / t_serial:,.0f}",
                     f"{ratio:.2f}x", f"{load_before} / {bl.load_average()}"])
        print(f"#   buffer {buffer_size}: sweep {[round(x, 3) for x in sweep_times]} s, "
              f"serial {[round(x, 3) for x in serial_times]} s" +
              (f" (measured on {n_serial} of {R} runs, scaled)" if n_serial < R else ""), flush=True)

    print()
    print(bl.table(["buffer", "runs", "sweep compile s", "sweep s", "sweep steps/s", "serial compile s",
                    "serial s", "serial steps/s", "serial/sweep", "load before / after"], rows))
    print("\n(s = seconds per timed chunk for all runs, compile excluded; steps/s = env steps of all "
          "runs per second, training + evaluation)")
    bl.print_ratio(args, ratio)
    return ratio


if __name__ == "__main__":
    main()
