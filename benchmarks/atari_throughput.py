"""Frames per second of EnvPool Atari: the bare pool against the whole DQN training pipeline.

For each R (runs, E envs each) one pool of R*E envs of the game (Dopamine's preprocessing, frame
skip 4, `envs.make(game, num_envs=E)`) is measured three ways, timed round-robin, compile
excluded (ahead of time, reported apart), each compiled function run once untimed first, the
fastest of N repeats kept:

- bare pool, jit adapter: random actions stepped inside `jax.jit` + `lax.scan`, vmapped over the
  R runs, so the adapter's batching rule makes ONE pool call of R*E envs per step (the step's
  observation is carried, so it is materialised every step as an agent would see it). This is
  the limit of this machine's cores through our env path;
- bare pool, envpool numpy: for reference, envpool's own `env.step(actions)` loop in Python on a
  pool of the same size and options (no JAX at all);
- pipeline: R DQN runs as the sweep runs them (`lax.scan` over `vmap` of `agent.iteration` over
  the runs: the sweep chunk's loop body, evaluation excluded), Nature CNN, RigL at 90% with mask
  updates inside every timed window, one optimizer step every 4 agent steps (`train_every: 4`),
  frame replay. The untimed warm-up window starts at t = 0 and passes `learning_starts`, so every
  timed window trains from its first step.

Frames = agent steps x frame skip, summed over the pool. `pipeline / bare` is the share of the
machine's env throughput the training pipeline keeps. `--breakdown` also times the pipeline
without mask updates and without training (acting, env step and replay write only) and derives
what one optimizer step and one mask update cost.

    python benchmarks/atari_throughput.py --quick    # 2-core CPU: R = 1, 2, batch 4, 100-step windows
    python benchmarks/atari_throughput.py            # GPU: R = 1, 4, 16, 64, batch 32, 100k replay, 1000-step windows
    python benchmarks/atari_throughput.py --quick --breakdown --runs 1   # where the CPU's time goes
    python benchmarks/atari_throughput.py --smoke    # R = 1, batch 4, 12-step windows: runs end to end

Last line: `ratio: X` = pipeline frames/s / bare pool (jit adapter) frames/s at the largest R
measured.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import benchlib as bl

BARE_SEED = 1_000  # the bare pools' env seeds: pools of their own, never the pipeline's


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--game", default="Pong")
    ap.add_argument("--runs", type=int, nargs="+", default=None,
                    help="R values (smoke: 1; quick: 1 2; full: 1 4 16 64)")
    ap.add_argument("--envs", type=int, default=1, help="E: envs per run (the pool has R*E)")
    ap.add_argument("--batch-size", type=int, default=None, help="quick: 4, full: 32")
    ap.add_argument("--steps", type=int, default=None,
                    help="agent steps per run in one timed pipeline window (smoke: 12, quick: 100, full: 1000)")
    ap.add_argument("--pool-frames", type=int, default=None,
                    help="frames of the whole pool in one timed bare-pool window, i.e. "
                         "pool-frames / (R x E x 4) agent steps, kept within 250..5000 "
                         "(smoke: 1000, quick: 8000, full: 200k)")
    ap.add_argument("--buffer-size", type=int, default=None,
                    help="replay frames per run (smoke: 1k, quick: 10k, full: 100k)")
    ap.add_argument("--max-replay-gib", type=float, default=32.0,
                    help="cap on all runs' replay together: a large R gets a smaller buffer per run")
    ap.add_argument("--learning-starts", type=int, default=None,
                    help="smoke: 8, quick: 32, full: 1000 (env steps)")
    ap.add_argument("--update-interval", type=int, default=None,
                    help="optimizer steps between mask updates (smoke: 1000, i.e. none in a window; "
                         "quick: 25, full: 125)")
    ap.add_argument("--method", default="rigl")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the pipeline without mask updates and without training (two more "
                         "compiles per R) and print what an optimizer step and a mask update cost")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds: no further R is started once it would exceed this "
                         "(smoke and quick: 900, full: 480)")
    args = ap.parse_args(argv)
    args.runs = args.runs or bl.preset(args, smoke=[1], quick=[1, 2], full=[1, 4, 16, 64])
    args.batch_size = args.batch_size or bl.preset(args, smoke=4, quick=4, full=32)
    args.steps = args.steps or bl.preset(args, smoke=12, quick=100, full=1000)
    args.pool_frames = args.pool_frames or bl.preset(args, smoke=1000, quick=8000, full=200_000)
    args.buffer_size = args.buffer_size or bl.preset(args, smoke=1000, quick=10_000, full=100_000)
    args.learning_starts = args.learning_starts or bl.preset(args, smoke=8, quick=32, full=1000)
    args.update_interval = args.update_interval or bl.preset(args, smoke=1000, quick=25, full=125)
    args.budget = args.budget or bl.preset(args, smoke=900.0, quick=900.0, full=480.0)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=2, full=3)
    if args.learning_starts > args.steps * args.envs:
        ap.error(f"--learning-starts {args.learning_starts} must be <= --steps x --envs "
                 f"({args.steps * args.envs}): the warm-up window must start training")
    return args


# ---------------------------------------------------------------------------------------------
# the three measurements of one R
class BarePoolJit:
    """R runs x E envs stepped with random actions in one jitted scan (one pool of R*E)."""

    def __init__(self, args, R: int):
        from purejaxsparse import envs

        self.env = env = envs.make(args.game, num_envs=args.envs, seed=BARE_SEED)
        n, E = env.action_space.n, args.envs
        self.steps = steps = pool_steps(args, R, env.options["frame_skip"])

        def one(state, obs, key):
            def body(carry, k):
                state, _ = carry
                action = (jax.random.bits(k, (E,)) % n).astype(jnp.int32)
                state, obs, _, _, _, _ = env.step(k, state, action)
                return (state, obs), None

            (state, obs), _ = jax.lax.scan(body, (state, obs), jax.random.split(key, steps))
            return state, obs

        keys = jax.random.split(jax.random.PRNGKey(0), R)
        self.carry = jax.jit(jax.vmap(env.reset))(keys)
        fn = jax.jit(jax.vmap(one), donate_argnums=(0, 1))
        self.compiled, self.compile_s = bl.compile_aot(fn, *self.carry, keys)
        self.frames = R * E * steps * env.options["frame_skip"]
        self.calls = 0
        self.run()  # warm-up

    def run(self) -> float:
        self.calls += 1
        keys = jax.random.split(jax.random.PRNGKey(self.calls), len(self.carry[1]))
        self.carry, s = bl.timed(self.compiled, *self.carry, keys)
        return s


class BarePoolNumpy:
    """envpool's own Python loop on a pool of R*E envs with the adapter's options."""

    def __init__(self, args, R: int, options: dict, n_actions: int):
        import envpool

        n, steps = R * args.envs, pool_steps(args, R, options["frame_skip"])
        self.pool = envpool.make(f"{args.game}-v5", env_type="gymnasium", num_envs=n, batch_size=n,
                                 seed=BARE_SEED + 1, **options)
        self.pool.reset()
        self.rng = np.random.default_rng(0)
        self.shape, self.n_actions = (steps, n), n_actions
        self.frames = n * steps * options["frame_skip"]
        self.run()  # warm-up

    def run(self) -> float:
        actions = self.rng.integers(0, self.n_actions, self.shape, dtype=np.int32)
        t = time.perf_counter()
        for a in actions:
            self.pool.step(a)
        return time.perf_counter() - t


def pool_steps(args, R: int, frame_skip: int) -> int:
    """Agent steps of one bare-pool window: about --pool-frames frames, 250..5000 steps."""
    return int(min(max(args.pool_frames // (R * args.envs * frame_skip), 250), 5000))


def replay_frames(args, R: int) -> int:
    """Replay frames per run: --buffer-size, capped so R runs' replays fit --max-replay-gib."""
    per_frame = 84 * 84 + 16  # one uint8 frame and its action/reward/flags
    cap = int(args.max_replay_gib * 2**30 // (R * per_frame))
    return max(min(args.buffer_size, cap), 6 * args.envs)


NEVER = 10**8  # total_steps of the pipeline's config; as an interval or warm-up: never reached


def pipeline_config(args, buffer_size: int, *, update_interval: int | None = None,
                    learning_starts: int | None = None, env_seed: int = 0) -> dict:
    return bl.dqn_config(
        env={"name": args.game, "seed": env_seed}, network="nature_cnn", num_envs=args.envs,
        batch_size=args.batch_size, buffer_size=buffer_size, train_every=4, dormant_batch=16,
        learning_starts=learning_starts or args.learning_starts,
        total_steps=NEVER, eval_every=NEVER // 100, eval_episodes=1,
        hparams={"sparsity": args.sparsity, "update_interval": update_interval or args.update_interval,
                 "end": NEVER,
                 "huber": True, "reward_clip": True, "learning_rate": 6.25e-5, "adam_eps": 1.5e-4,
                 "target_update_every": 2000, "epsilon_decay_steps": 0})


class Pipeline:
    """R DQN runs: `steps` iterations of the vmapped training iteration in one donated scan."""

    def __init__(self, args, R: int, buffer_size: int, **variant):
        config = pipeline_config(args, buffer_size, **variant)
        self.agent = agent = bl.build_agent(config)
        keys, self.hps = bl.run_hparams(config, [args.method] * R)
        self.steps = steps = args.steps

        def window(states, hps, t0):
            def body(carry, _):
                s, t = carry
                return (jax.vmap(lambda s, h: agent.iteration(s, h, t))(s, hps), t + 1), None
            return jax.lax.scan(body, (states, t0), None, length=steps)[0][0]

        fn = jax.jit(window, donate_argnums=0)
        shapes = jax.eval_shape(jax.vmap(agent.init), keys, self.hps)
        self.compiled, self.compile_s = bl.compile_aot(fn, shapes, self.hps, jnp.int32(0))
        self.states = jax.block_until_ready(jax.jit(jax.vmap(agent.init))(keys, self.hps))
        self.frames = R * args.envs * steps * agent.env.options["frame_skip"]
        self.window = 0
        self.run()  # warm-up: window 0 from t = 0, fills the replay past learning_starts

    def updates_in_window(self, w: int, interval: int) -> tuple[int, int]:
        """(optimizer steps, mask updates) in window w (as agent.iteration and the schedule count)."""
        first, every = self.agent.schedule.first_train_iter, self.agent.static.train_every
        grads = [(t - first) // every + 1 for t in range(w * self.steps, (w + 1) * self.steps)
                 if t >= first and (t - first) % every == 0]
        return len(grads), sum((g - 1) % interval == 0 for g in grads)  # the update runs at counter g - 1

    def run(self) -> float:
        t0 = jnp.int32(self.window * self.steps)
        self.states, s = bl.timed(self.compiled, self.states, self.hps, t0)
        self.window += 1
        return s


# ---------------------------------------------------------------------------------------------
def measure(args, R: int) -> dict:
    buffer_size = replay_frames(args, R)
    load = bl.load_average()
    bare = BarePoolJit(args, R)
    numpy_pool = BarePoolNumpy(args, R, bare.env.options, bare.env.action_space.n)
    pipe = Pipeline(args, R, buffer_size)
    # --breakdown: the same pipeline without mask updates, and without training (acting only);
    # each on a pool of its own (env seed), never stepping another variant's envs
    extra = {"no mask updates": Pipeline(args, R, buffer_size, update_interval=NEVER, env_seed=1),
             "acting only (no training)": Pipeline(args, R, buffer_size, learning_starts=NEVER, env_seed=2)
             } if args.breakdown else {}
    best = {"bare": math.inf, "numpy": math.inf, "pipe": math.inf, **{k: math.inf for k in extra}}
    windows = []
    for _ in range(args.repeats):  # round-robin: load changes hit all of them alike
        best["bare"] = min(best["bare"], bare.run())
        best["numpy"] = min(best["numpy"], numpy_pool.run())
        windows.append(pipe.window)
        best["pipe"] = min(best["pipe"], pipe.run())
        for name, p in extra.items():
            best[name] = min(best[name], p.run())
    grads, masks = zip(*(pipe.updates_in_window(w, args.update_interval) for w in windows))
    fps = {"bare": bare.frames / best["bare"], "numpy": numpy_pool.frames / best["numpy"],
           "pipe": pipe.frames / best["pipe"]}
    return {"R": R, "buffer": buffer_size, "pool_steps": bare.steps, "fps": fps, "pipe_s": best["pipe"],
            "grads": grads, "masks": masks, "compile_pipe": pipe.compile_s, "compile_bare": bare.compile_s,
            "load": f"{load} / {bl.load_average()}", "breakdown": {k: best[k] for k in extra}}


def breakdown_rows(args, res: dict) -> list:
    """--breakdown: where a pipeline window's time goes (differences of the three variants)."""
    b, full, steps = res["breakdown"], res["pipe_s"], args.steps
    grads, masks = min(res["grads"]), min(res["masks"])
    act, no_mask = b["acting only (no training)"], b["no mask updates"]
    rows = [[res["R"], "pipeline (as above)", full, full / steps * 1e3, ""],
            [res["R"], "no mask updates", no_mask, no_mask / steps * 1e3, ""],
            [res["R"], "acting only (no training)", act, act / steps * 1e3, ""],
            [res["R"], f"=> per optimizer step (batch {args.batch_size})", "", "",
             f"{(no_mask - act) / max(grads, 1) * 1e3:,.1f} ms"],
            [res["R"], f"=> per {args.method} mask update", "", "", f"{(full - no_mask) / max(masks, 1):,.2f} s"]]
    return rows


def span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    print(f"# atari_throughput: {args.game} (EnvPool, Dopamine preprocessing, frame skip 4), E = {args.envs} "
          f"env(s) per run; bare pool: random actions, ~{args.pool_frames:,} frames per window; pipeline: DQN "
          f"Nature CNN, {args.method} {args.sparsity:.0%} (mask update every {args.update_interval} "
          f"optimizer steps), batch {args.batch_size}, train_every 4, learning_starts {args.learning_starts}, "
          f"{args.steps} agent steps per run per window, evaluation excluded; compile excluded, "
          f"fastest of {args.repeats} round-robin repeats")
    print(f"# {bl.machine_line()}", flush=True)
    rows, results, started, last_s = [], [], time.perf_counter(), 0.0
    for R in args.runs:
        elapsed = time.perf_counter() - started
        if results and elapsed + 2.0 * last_s > args.budget:
            print(f"# stop: R={R} would exceed the {args.budget:.0f} s budget")
            break
        t_r = time.perf_counter()
        try:
            res = measure(args, R)
        except Exception as err:  # noqa: BLE001 - e.g. out of device memory at this R
            if not results:
                raise
            print(f"# stop: R={R} failed: {type(err).__name__}: {str(err).splitlines()[0][:300]}")
            break
        last_s = time.perf_counter() - t_r
        results.append(res)
        f = res["fps"]
        rows.append([R, args.envs, f["bare"], f["numpy"], f["pipe"], f"{f['pipe'] / f['bare']:.4f}",
                     f"{res['compile_pipe']:.1f} / {res['compile_bare']:.1f}",
                     f"{span(res['grads'])} / {span(res['masks'])}", f"{res['buffer']:,}", res["pool_steps"]])
        print(f"#   R={R} done in {last_s:.0f} s (pipeline window {res['pipe_s']:.2f} s; load average "
              f"before / after {res['load']})", flush=True)
    print()
    print(bl.table(["R", "E", "bare pool frames/s (jit adapter)", "envpool numpy frames/s", "pipeline frames/s",
                    "pipeline / bare", "compile s (pipeline / bare)", "optimizer steps / mask updates per window",
                    "replay frames per run", "bare steps per window"], rows))
    if args.breakdown:
        print()
        print(bl.table(["R", "pipeline variant", "s per window", "ms per agent step", "derived"],
                       [row for res in results for row in breakdown_rows(args, res)]))
    ratio = results[-1]["fps"]["pipe"] / results[-1]["fps"]["bare"]
    bl.print_ratio(args, ratio, digits=4)
    return ratio


if __name__ == "__main__":
    main()
