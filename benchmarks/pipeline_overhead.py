"""What one DQN training step costs beyond the network's own forward+backward+Adam.

All variants run in a `lax.scan` of the same length, with a carried state, compiled once (AOT,
compile time excluded), run once untimed, then timed (fastest repeat):

- bare: forward + backward + Adam of the Q-network on a fixed batch of the same shapes (obs
  [B, 4], actions, regression targets): no env, no replay, no masks, no target network;
- then, one thing added at a time: the target network (DQN's TD loss, still a fixed batch);
  sampling the batch from the 100k replay buffer; the agent's whole optimizer step as training
  runs it (the sparse optimizer: masked gradients and params, the mask-update check and
  scheduled mask updates; L2, target copy);
- training step: the agent's whole iteration (act, env step, replay write, then the optimizer
  step) as the sweep runs it, evaluation excluded;
- the same vmapped over R runs (time per run-step);
- evaluation: one `evaluate` call (eval episodes + sparsity/dormant metrics) of the policy the
  training-step row trained, reported per call and amortised over `eval_every` env steps. DQN
  evaluates every `eval_every` steps, so this is the cost the iteration loop above leaves out.

The run is RigL at 90% with mask updates every 1000 optimizer steps (a mask update falls in
each timed window), so masks cost what they cost a user.

    python benchmarks/pipeline_overhead.py --quick    # 2-core CPU, ~3 minutes
    python benchmarks/pipeline_overhead.py            # GPU, the paper's 512x512 network
    python benchmarks/pipeline_overhead.py --smoke    # MLP 8, scans of 200 iterations: runs end to end

Last line: `ratio: X` = training step / bare step (single run, first network size).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import benchlib as bl


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", action="append", default=None,
                    help="network hidden sizes; repeat the flag for several networks "
                         "(smoke: 8; quick: 128 128 and 64 64; full: 512 512)")
    ap.add_argument("--batch-size", type=int, default=None, help="smoke: 8, quick: 64, full: 128")
    ap.add_argument("--steps", type=int, default=None, help="scan length (smoke: 200, quick: 3000, full: 10000)")
    ap.add_argument("--runs", type=int, default=None, help="R of the vmapped row (smoke: 2, quick: 16, full: 256)")
    ap.add_argument("--method", default="rigl")
    args = ap.parse_args(argv)
    args.hidden = args.hidden or bl.preset(args, smoke=[[8]], quick=[[128, 128], [64, 64]], full=[[512, 512]])
    args.batch_size = args.batch_size or bl.preset(args, smoke=8, quick=64, full=128)
    args.steps = args.steps or bl.preset(args, smoke=200, quick=3000, full=10_000)
    args.runs = args.runs or bl.preset(args, smoke=2, quick=16, full=256)
    # env steps per evaluation (also the replay warm-up), evaluation episodes, optimizer steps
    # between mask updates (one falls in every timed scan)
    args.eval_every, args.eval_episodes, args.update_interval = bl.preset(
        args, smoke=(100, 2, 50), quick=(1000, 10, 1000), full=(1000, 10, 1000))
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=3, full=3)
    return args


class Scan:
    """`length` applications of `step` to a carry in one compiled, donated `lax.scan`:
    compiled ahead of time, run once untimed (warm-up); each `time()` runs it once more."""

    def __init__(self, step, carry, length: int):
        run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (step(c), None), c, None, length=length)[0],
                      donate_argnums=0)
        carry = jax.tree.map(jnp.copy, carry)  # the scan donates its carry; callers keep theirs
        self.compiled, self.compile_s = bl.compile_aot(run, carry)
        self.carry = jax.block_until_ready(self.compiled(carry))  # warm-up
        self.best = float("inf")

    def time(self):
        self.carry, s = bl.timed(self.compiled, self.carry)
        self.best = min(self.best, s)


def interleaved(scans: dict, repeats: int) -> None:
    """Time every scan `repeats` times, round-robin, so load changes hit all of them alike."""
    for _ in range(repeats):
        for scan in scans.values():
            scan.time()


def measure(hidden, args):
    """{variant: (seconds for args.steps iterations, compile seconds)} and the agent."""
    config = bl.dqn_config(hidden=hidden, batch_size=args.batch_size, buffer_size=100 * args.eval_every,
                           learning_starts=args.eval_every, total_steps=100 * args.eval_every,
                           eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                           hparams={"sparsity": 0.9, "update_interval": args.update_interval,
                                    "end": 100 * args.eval_every})
    agent = bl.build_agent(config)
    keys, hps = bl.run_hparams(config, [args.method] * args.runs)
    hp = bl.take(hps, 0)
    state = jax.jit(agent.init)(keys[0], hp)
    t_start = agent.schedule.first_train_iter + 1  # steady state: training on every iteration
    n, B = args.steps, args.batch_size
    net, tx = agent.q, optax.adam(1e-3)
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(1), 4)
    fixed = {"obs": jax.random.normal(k1, (B, *agent.env.obs_shape)),
             "next_obs": jax.random.normal(k4, (B, *agent.env.obs_shape)),
             "action": jax.random.randint(k2, (B,), 0, agent.env.action_space.n),
             "reward": jax.random.normal(k3, (B,)), "terminated": jnp.zeros((B,), bool)}

    # the Adam-only variants carry a plain Adam state (the agent's is its sparse optimizer's)
    plain = state.replace(opt_state=tx.init(state.params))

    def adam_step(s, loss, *loss_args):
        g = jax.grad(loss)(s.params, *loss_args)
        upd, opt = tx.update(g, s.opt_state, s.params)
        return s.replace(params=optax.apply_updates(s.params, upd), opt_state=opt)

    def regression(p, batch):  # the bare network's loss: no target network
        q = net.apply(p, batch["obs"])
        return jnp.mean(jnp.square(jnp.take_along_axis(q, batch["action"][:, None], -1)[:, 0] - batch["reward"]))

    def td(p, target, batch):  # DQN's loss with the target network
        q = jnp.take_along_axis(net.apply(p, batch["obs"]), batch["action"][:, None], -1)[:, 0]
        y = batch["reward"] + 0.99 * (1.0 - batch["terminated"]) * net.apply(target, batch["next_obs"]).max(-1)
        return jnp.mean(jnp.square(q - jax.lax.stop_gradient(y)))

    def sampled(s, t):
        from purejaxsparse import replay
        key, k = jax.random.split(s.key)
        return s.replace(key=key), replay.sample(k, s.buffer, t + 1, B)

    variants = {  # name: (step, initial state)
        "bare": (lambda s, t: adam_step(s, regression, fixed), plain),
        # (the current params as the target: a target that never changes inside the scan would
        # let XLA hoist its forward pass out of the loop)
        "+ target network (TD loss)": (lambda s, t: adam_step(s, td, s.params, fixed), plain),
        "+ replay sample (key split, one draw of index bits, gathers)":
            (lambda s, t: (lambda s, b: adam_step(s, td, s.target_params, b))(*sampled(s, t)), plain),
        "train only (+ masks, mask-update check, L2, target copy)":
            (lambda s, t: (lambda key, k_sample, k_mask: agent._train(
                s.replace(key=key), hp, t, t - agent.schedule.first_train_iter, k_sample, k_mask))(
                *jax.random.split(s.key, 3)), state),
        "training step (+ act, env step, replay write)": (lambda s, t: agent.iteration(s, hp, t), state),
    }
    scans = {name: Scan(lambda c, f=f: (f(c[0], c[1]), c[1] + 1), (start, jnp.int32(t_start)), n)
             for name, (f, start) in variants.items()}

    # the whole training iteration, R runs vmapped (t unbatched, as in the engine)
    states = jax.jit(jax.vmap(agent.init))(keys, hps)

    def iteration_r(c):
        s, t = c
        return jax.vmap(lambda s, h: agent.iteration(s, h, t))(s, hps), t + 1
    vmapped = f"training step, {args.runs} runs vmapped (per run)"
    scans[vmapped] = Scan(iteration_r, (states, jnp.int32(t_start)), n)
    interleaved(scans, args.repeats)
    out = {name: (scan.best, scan.compile_s) for name, scan in scans.items()}
    out[vmapped] = (out[vmapped][0] / args.runs, out[vmapped][1])
    trained = scans["training step (+ act, env step, replay write)"].carry[0]

    # evaluation, one call, of the policy trained by the full training-step variant above
    ev = jax.jit(lambda s, k: agent.evaluate(s, hp, k, jnp.int32(t_start + n)))
    compiled, comp = bl.compile_aot(ev, trained, jax.random.PRNGKey(0))
    jax.block_until_ready(compiled(trained, jax.random.PRNGKey(0)))
    best = min(bl.timed(compiled, trained, jax.random.PRNGKey(i))[1] for i in range(1, 1 + args.repeats))
    returns = agent.evaluation_returns(trained, hp, jax.random.PRNGKey(0))
    out["evaluation (per call)"] = (best, comp)
    return agent, out, float(returns.mean())


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    print(f"# pipeline_overhead: DQN on CartPole-v1, method {args.method} 90%, batch {args.batch_size}, "
          f"scan of {args.steps} iterations, {args.repeats} timed repeats (fastest kept), compile excluded")
    print(f"# {bl.machine_line()}")
    rows, ratio = [], None
    for hidden in args.hidden:
        load = bl.load_average()
        agent, out, eval_return = measure(hidden, args)
        bare = out["bare"][0] / args.steps
        for name, (sec, comp) in out.items():
            per = sec if name.startswith("evaluation") else sec / args.steps
            rel = "" if name.startswith("evaluation") else f"{per / bare:.2f}x"
            rows.append([str(hidden), name, f"{per * 1e6:,.1f}", rel, f"{comp:.1f}"])
        ev = out["evaluation (per call)"][0]
        step = out["training step (+ act, env step, replay write)"][0] / args.steps
        rows.append([str(hidden), f"evaluation / {agent.eval_every} steps (amortised; return "
                     f"{eval_return:.0f}, {agent.eval_episodes} episodes)",
                     f"{ev / agent.eval_every * 1e6:,.1f}", f"+{ev / agent.eval_every / step:.0%} of a step", ""])
        rows.append([str(hidden), "load average before/after", f"{load} / {bl.load_average()}", "", ""])
        if ratio is None:
            ratio = step / bare
        print(f"#   {hidden} done", flush=True)
    print()
    print(bl.table(["network", "what", "us per step", "vs bare", "compile s"], rows))
    bl.print_ratio(args, ratio)
    return ratio


if __name__ == "__main__":
    main()
