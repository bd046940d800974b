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

Last line: `ratio: X` = serial time / sweep time for the largest buffer.
"""

from __future__ import annotations

import time

import benchlib as bl

METHODS = ("dense", "static", "set", "rigl")


def parse_args(argv=None):
    """The settings of a measurement (sizes resolved for --quick or full mode)."""
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="R (quick: 16, full: 256)")
    ap.add_argument("--serial-runs", type=int, default=None,
                    help="time the serial side on this many of the R runs and scale to R "
                         "(every run executes the same compiled program; default: all R in "
                         "--quick, 32 in full mode)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--buffer-sizes", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--chunk-evals", type=int, default=None,
                    help="evaluations (of 1000 env steps) per timed chunk (quick: 2, full: 5)")
    args = ap.parse_args(argv)
    args.runs = args.runs or (16 if args.quick else 256)
    args.serial_runs = min(args.runs, args.serial_runs or (args.runs if args.quick else 32))
    args.chunk_evals = args.chunk_evals or (2 if args.quick else 5)
    args.repeats = args.repeats or 2
    return args


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    R, n_serial, chunk_evals, repeats = args.runs, args.serial_runs, args.chunk_evals, args.repeats

    print(f"# sweep_vs_serial: {R} DQN runs on CartPole-v1, MLP {args.hidden}, batch {args.batch_size}, "
          f"{chunk_evals * 1000} env steps per run per timed chunk, {repeats} timed chunks (fastest kept)")
    print(f"# {bl.machine_line()}")
    rows, ratio = [], None
    for buffer_size in args.buffer_sizes:
        config = bl.dqn_config(hidden=args.hidden, batch_size=args.batch_size, buffer_size=buffer_size,
                               learning_starts=1000, total_steps=100_000, eval_every=1000, eval_episodes=10,
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
    print(f"ratio: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
