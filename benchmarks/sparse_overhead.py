"""What each sparse-training method costs over dense, in the same sweep program.

One sweep of R DQN runs per method (dense, dense_width, static, SET, RigL, gradual pruning,
all at 90% sparsity with ERK), plus one sweep mixing all six methods. Method and sparsity are
traced values, so every row runs the SAME compiled program (compiled once, compile time
excluded and printed apart); only the hyperparameter values differ. Mask updates happen every
1000 optimizer steps (the paper's interval) for SET, RigL and pruning, from step 0 (pruning
from step 1000) to beyond the timed window, so each timed chunk pays for its share of mask
updates, exactly what a user pays. Each row's chunk 0 (with the replay warm-up) is untimed;
then the rows are timed in turn (interleaved, so load changes hit every row alike), the
fastest of the repeats kept. Chunks include their evaluations.

    python benchmarks/sparse_overhead.py --quick     # 8 runs per row, MLP 128x128, ~3 minutes
    python benchmarks/sparse_overhead.py             # 64 runs per row, MLP 512x512 (GPU)
    python benchmarks/sparse_overhead.py --smoke     # 2 runs per row, MLP 8, 100-step chunks: runs end to end

Last line: `ratio: X` = slowest single-method sweep / dense sweep.
"""

from __future__ import annotations

import time

import benchlib as bl

METHODS = ("dense", "dense_width", "static", "set", "rigl", "prune")


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="R per row (smoke: 2, quick: 8, full: 64)")
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="smoke: 8, quick: 128 128, full: 512 512")
    ap.add_argument("--batch-size", type=int, default=None, help="smoke: 8, quick: 64, full: 128")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--update-interval", type=int, default=None, help="smoke: 50, else 1000")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="env steps per evaluation, also the replay warm-up (smoke: 100, else 1000)")
    ap.add_argument("--chunk-evals", type=int, default=None,
                    help="evaluations per timed chunk (smoke: 1, quick: 3, full: 5)")
    args = ap.parse_args(argv)
    args.runs = args.runs or bl.preset(args, smoke=2, quick=8, full=64)
    args.hidden = args.hidden or bl.preset(args, smoke=[8], quick=[128, 128], full=[512, 512])
    args.batch_size = args.batch_size or bl.preset(args, smoke=8, quick=64, full=128)
    args.update_interval = args.update_interval or bl.preset(args, smoke=50, quick=1000, full=1000)
    args.eval_every = args.eval_every or bl.preset(args, smoke=100, quick=1000, full=1000)
    args.chunk_evals = args.chunk_evals or bl.preset(args, smoke=1, quick=3, full=5)
    args.eval_episodes = bl.preset(args, smoke=2, quick=10, full=10)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=3, full=3)
    return args


def mask_update_seconds(agent, states, hps, args):
    """Seconds per call of the scheduled mask update (RigL, all runs vmapped as in the engine)
    and of the check at steps where no run updates (cond_any then skips the update), each
    measured as a scan over calls (no per-call dispatch)."""
    import jax
    import jax.numpy as jnp
    from purejaxsparse import sparse as sp

    spec, n = agent.q.spec, 50
    carry0 = (states.params, states.opt_state.inner_state, states.masks)

    def scan(steps):
        def body(c, step):
            def one(params, opt, masks, h):
                # the params stand in for the dense gradient RigL reads (same shapes, same work)
                return sp.maybe_update_masks(jax.random.fold_in(jax.random.PRNGKey(0), step), spec,
                                             h.sparse(), step, params, opt, masks, params)
            return jax.vmap(one)(*c, hps), None
        return jax.jit(lambda c: jax.lax.scan(body, c, steps)[0])

    out = []
    for steps in (jnp.arange(1, n + 1, dtype=jnp.int32) * args.update_interval,      # all update
                  args.update_interval + 1 + jnp.arange(n, dtype=jnp.int32)):       # none updates
        compiled, _ = bl.compile_aot(scan(steps), carry0)
        jax.block_until_ready(compiled(carry0))
        out.append(min(bl.timed(compiled, carry0)[1] for _ in range(3)) / n)
    return out[0], out[1]


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    R = args.runs
    config = bl.dqn_config(hidden=args.hidden, batch_size=args.batch_size, buffer_size=100 * args.eval_every,
                           learning_starts=args.eval_every, total_steps=200 * args.eval_every,
                           eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                           hparams={"sparsity": args.sparsity, "update_interval": args.update_interval,
                                    "start": 0, "end": 200 * args.eval_every, "distribution": "erk"})
    agent = bl.build_agent(config)
    steps = args.chunk_evals * agent.eval_every
    print(f"# sparse_overhead: {R} DQN runs per row on CartPole-v1, MLP {args.hidden}, batch "
          f"{args.batch_size}, sparsity {args.sparsity}, mask updates every {args.update_interval} "
          f"optimizer steps; {steps} env steps per run per timed chunk, {args.repeats} timed chunks "
          f"(fastest kept)")
    print(f"# {bl.machine_line()}")

    rows = {m: [m] * R for m in METHODS}
    rows["all six mixed"] = [METHODS[r % len(METHODS)] for r in range(R)]
    chunks = bl.Chunks(agent, args.chunk_evals, batched=True)
    live = {}
    for name, methods in rows.items():
        # pruning ramps up from the first timed chunk (its start must be below its end)
        keys, hps = bl.run_hparams(config, methods, per_method={"prune": {"start": args.eval_every}})
        states = chunks.init(keys, hps)
        if chunks.compiled is None:
            chunks.compile(states, hps)
        states, _ = chunks(states, hps, 0)  # warm-up chunk (replay fill), untimed
        live[name] = [states, hps, []]
    load_before = bl.load_average()
    for rep in range(args.repeats):
        for name, entry in live.items():
            t = time.perf_counter()
            entry[0], _ = chunks(entry[0], entry[1], 1 + rep)
            entry[2].append(time.perf_counter() - t)
    load_after = bl.load_average()

    update_s, check_s = mask_update_seconds(agent, live["rigl"][0], live["rigl"][1], args)
    dense = min(live["dense"][2])
    table, worst = [], 0.0
    for name, (_, _, times) in live.items():
        t = min(times)
        if name in METHODS:
            worst = max(worst, t / dense)
        table.append([name, R, t, f"{R * steps / t:,.0f}", f"{t / dense:.3f}x",
                      " ".join(f"{x:.3f}" for x in times)])
    print()
    print(bl.table(["methods", "runs", "s per chunk", "env steps/s", "vs dense", "all repeats (s)"], table))
    print(f"\n(one compiled program for every row, compile {chunks.compile_seconds:.1f} s excluded; "
          f"load average before {load_before}, after {load_after})")
    per_chunk = steps // args.update_interval  # one optimizer step per env step after warm-up
    print(f"\nDirect measurement of what the masks cost (less noisy than the rows above, whose "
          f"differences below ~10% are load noise: dense, dense_width and static run identical "
          f"operations):\n" + bl.table(
              ["what", "seconds", "per timed chunk", "vs dense chunk"],
              [[f"one RigL mask update of all {R} runs", f"{update_s:.4f}",
                f"x{per_chunk} = {per_chunk * update_s:.3f} s", f"+{per_chunk * update_s / dense:.1%}"],
               [f"the mask-update check when no run updates (all {R} runs)", f"{check_s:.6f}",
                f"x{steps} = {steps * check_s:.3f} s", f"+{steps * check_s / dense:.1%}"]]))
    bl.print_ratio(args, worst)
    return worst


if __name__ == "__main__":
    main()
