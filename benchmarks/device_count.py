"""What it costs to make a sweep's results independent of the device count, side by side.

One process, the quickstart sweep (15 DQN runs; cut to --steps env steps), its chunk compiled
three ways: on one device (the reference), and on all devices with XLA's default pipeline and
with the engine's options (`sweep.compiler_options`: no CSE). The variants run in alternating
order, --repeats times each; reported per variant: the fastest and median seconds for the
whole sweep (compile excluded), and whether its returns equal the one-device returns bit for
bit. On a CPU, --devices N forces N host devices (set before JAX starts).

    python benchmarks/device_count.py --quick          # 4 forced CPU devices, 10k steps, 3 repeats
    python benchmarks/device_count.py                  # every visible device (GPUs), 50k steps

Last line: `ratio: X` = median seconds without CSE / median seconds with XLA's default, on
all devices.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import benchlib as bl

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=None,
                    help="force this many CPU host devices (quick: 4; default: the visible devices)")
    ap.add_argument("--steps", type=int, default=None, help="env steps per run (quick: 10000, full: 50000)")
    args = ap.parse_args(argv)
    quick = args.quick
    args.devices = args.devices or (4 if quick else None)
    args.steps = args.steps or (10_000 if quick else 50_000)
    args.repeats = args.repeats or 3
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.devices:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}")
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    bl.pin_cpus(args.cpus)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from purejaxsparse import sweep
    from purejaxsparse.config import apply_overrides, load_config, plan_sweep

    config = apply_overrides(load_config(ROOT / "configs" / "quickstart.yaml"),
                             [f"total_steps={args.steps}", "eval_every=1000", "eval_episodes=3"])
    plan = plan_sweep(config)
    agent, devices = plan.agent, jax.devices()
    if len(devices) < 2:
        print(f"device_count: skipped, {len(devices)} device (needs 2 or more; on a CPU: --devices 4)")
        return None
    print(bl.machine_line())
    print(f"{plan.num_runs} runs x {args.steps:,} steps, {plan.num_chunks} chunks; {len(devices)} "
          f"{devices[0].platform} devices")

    def variant(devs, options):
        sharding = sweep._runs_sharding(devs)
        keys, hp = jax.device_put(sweep._pad_runs((plan.keys, plan.hparams), plan.num_runs, len(devs)), sharding)
        init = jax.jit(jax.vmap(agent.init), out_shardings=sharding)
        shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                              jax.eval_shape(init, keys, hp))
        t = time.perf_counter()
        compiled = sweep._chunk_function(agent, plan.chunk_evals).lower(shapes, hp, jnp.int32(0)).compile(options)
        print(f"compiled on {len(devs)} device(s), options {options}: {time.perf_counter() - t:.1f} s", flush=True)
        return init, keys, hp, compiled

    variants = {"1 device": variant(devices[:1], sweep.compiler_options(1)),
                f"{len(devices)} devices, XLA default": variant(devices, None),
                f"{len(devices)} devices, no CSE (engine)": variant(devices, sweep.compiler_options(len(devices)))}
    seconds = {name: [] for name in variants}
    returns = {}
    for rep in range(args.repeats):
        for name in (list(variants) if rep % 2 == 0 else list(variants)[::-1]):
            init, keys, hp, compiled = variants[name]
            states = jax.block_until_ready(init(keys, hp))
            t, rows = time.perf_counter(), []
            for c in range(plan.num_chunks):
                states, metrics = compiled(states, hp, jnp.int32(c * plan.chunk_evals * agent.iterations_per_eval))
                rows.append(np.asarray(metrics["eval_return"])[:plan.num_runs])
            jax.block_until_ready(states)
            seconds[name].append(time.perf_counter() - t)
            returns[name] = np.concatenate(rows, axis=1)
    text, ratio = summarise(seconds, returns)
    print(text)
    print(f"ratio: {ratio:.3f}")
    return ratio


def summarise(seconds: dict, returns: dict) -> tuple[str, float]:
    """(table, ratio) from each variant's timed repeats and final returns, in the order
    one device, all devices with XLA's default, all devices without CSE."""
    import numpy as np

    names = list(seconds)
    reference = returns[names[0]]
    rows = [[name, min(ts), float(np.median(ts)), "yes" if np.array_equal(returns[name], reference) else
             f"no ({int((returns[name] != reference).sum())} of {reference.size} differ)"]
            for name, ts in seconds.items()]
    table = bl.table(["program", "fastest s", "median s", "returns = 1 device, bit for bit"], rows)
    return table, float(np.median(seconds[names[2]]) / np.median(seconds[names[1]]))


if __name__ == "__main__":
    main()
