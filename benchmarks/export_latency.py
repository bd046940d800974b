"""Batch-1 action latency of an exported sparse policy against the dense policy, side by side.

For the 2x512 DQN Q-network (CartPole) and the 2x256 SAC actor (halfcheetah: 17 -> 256 -> 256
-> 12), at each sparsity (ERK, the networks' masks as a static run draws them), one observation
at a time as a controller acts:
  (a) jax:    the dense JAX policy under `jax.jit` (network + greedy action: argmax, or the
              squashed mean in the action box), numpy observation in, numpy action out;
  (b) numpy:  the same weights as dense numpy arrays (export.py with every layer dense);
  (c) export: the exported file (export.py: CSR where a layer's density <= csr_max_density).
Calls are timed one by one (perf_counter_ns) in interleaved rounds (a, b, c, a, b, c, ...), so
load changes hit all three alike. Per variant: the median of its fastest round (as benchlib's
"fastest repeat": on a shared CPU slower rounds are other people's load) and the p99 of all its
calls; the ratios are of those medians. File sizes: the sparse export
against the same policy with dense kernels (both uncompressed npz). The three variants are
checked to give the same actions first.

    taskset -c 0 python benchmarks/export_latency.py          # the numbers (one core)
    python benchmarks/export_latency.py --quick               # a few seconds: the table only
    python benchmarks/export_latency.py --smoke               # both networks at 95%, 20 calls: runs end to end

Last line: `ratio: X` = (b) dense numpy median / (c) export median of the first network at the
sparsity nearest 95% (the export's goal there: at least 2).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SPARSITIES = (0.8, 0.9, 0.95, 0.98)
NETWORKS = {
    "DQN 2x512 (CartPole)": {"agent": "dqn", "env": "CartPole-v1", "agent_config": {"hidden": [512, 512]}},
    "SAC actor 2x256 (halfcheetah)": {"agent": "sac", "env": "halfcheetah",
                                      "agent_config": {"hidden": [256, 256], "buffer_size": 1000}},
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few calls and sparsities: checks it runs (seconds)")
    ap.add_argument("--smoke", action="store_true",
                    help="the tiniest sizes that still run the whole script: checks that it works; "
                         "its numbers mean nothing")
    ap.add_argument("--calls", type=int, default=None,
                    help="timed calls per variant (default 20000; quick 200; smoke 20)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds the calls are split into")
    ap.add_argument("--sparsity", type=float, nargs="+", default=None, help=f"default {SPARSITIES}")
    ap.add_argument("--networks", nargs="+", choices=("dqn", "sac"), default=None,
                    help="default: both (quick: dqn)")
    args = ap.parse_args(argv)
    args.calls = args.calls or (20 if args.smoke else 200 if args.quick else 20_000)
    args.sparsity = args.sparsity or ([0.95] if args.smoke or args.quick else list(SPARSITIES))
    args.networks = args.networks or (["dqn"] if args.quick and not args.smoke else ["dqn", "sac"])
    args.rounds = min(args.rounds, args.calls)
    return args


def build(spec: dict, sparsity: float, key: int = 0):
    """(agent, params, PolicyArrays, jitted dense JAX policy) of one network at one sparsity."""
    import jax
    from purejaxsparse.train import make_train

    train = make_train({**spec, "total_steps": 1000, "eval_every": 1000, "eval_episodes": 1})
    agent, hp = train.agent, train.hparams(method="static", sparsity=sparsity)
    if agent.name == "dqn":
        params, masks = agent.q.init(jax.random.PRNGKey(key), hp.sparse())
        inputs = {"params": params, "masks": masks}
        act = jax.jit(lambda p, obs: jax.numpy.argmax(agent.q.apply(p, obs), axis=-1))
    else:
        # no actor_sparsity / actor_param_fraction set: the actor's sparsity is `sparsity`
        params, masks = agent.actor.init(jax.random.PRNGKey(key), hp.sparse())
        inputs = {"params": params, "masks": masks}
        act = jax.jit(lambda p, obs: agent.eval_policy(SimpleNamespace(actor_params=p), hp)(None, obs))
    return agent, params, agent.policy_arrays(jax.tree.map(np.asarray, inputs), hp), act


def time_calls(fns: dict, observations: np.ndarray, calls: int, rounds: int) -> dict:
    """name -> per-call seconds [rounds, calls // rounds]; each round times every fn in turn on
    the same observations."""
    per_round = calls // rounds
    out = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            times = np.empty(per_round)
            for i in range(per_round):
                obs = observations[(r * per_round + i) % len(observations)]
                t0 = time.perf_counter_ns()
                fn(obs)
                times[i] = time.perf_counter_ns() - t0
            out[name].append(times)
    return {name: np.stack(t) * 1e-9 for name, t in out.items()}


def measure(name: str, spec: dict, sparsity: float, args, tmp: Path) -> dict:
    import jax
    from purejaxsparse.export import load_policy
    from purejaxsparse.export_writer import write_policy

    agent, params, policy, act = build(spec, sparsity)
    sparse_path, dense_path = tmp / f"{agent.name}_{sparsity}.npz", tmp / f"{agent.name}_{sparsity}_dense.npz"
    meta = write_policy(sparse_path, policy, {"benchmark": name})
    write_policy(dense_path, policy, {"benchmark": name}, csr_max_density=-1.0)
    exported, dense_np = load_policy(sparse_path), load_policy(dense_path)
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(256, *agent.env.obs_shape)).astype(np.float32)
    fns = {"jax": lambda o: np.asarray(act(params, o[None]))[0], "numpy": dense_np, "export": exported}
    actions = {k: np.stack([np.asarray(f(o)) for o in observations[:64]]) for k, f in fns.items()}  # + warm-up
    for k in ("numpy", "export"):
        np.testing.assert_allclose(actions[k], actions["jax"], atol=1e-5, err_msg=f"{name} {k} vs jax")
    times = time_calls(fns, observations, args.calls, args.rounds)
    stats = {k: (np.median(t, axis=1).min() * 1e6, np.percentile(t, 99) * 1e6) for k, t in times.items()}
    return {"network": name, "sparsity": sparsity, "active": meta["active_params"], "kernels": meta["kernel_params"],
            "formats": "/".join("C" if layer["format"] == "csr" else "D" for layer in meta["layers"]),
            "densities": "/".join(f"{layer['density']:.2f}" for layer in meta["layers"]),
            **{f"{k}_{q}": v for k, (m, p) in stats.items() for q, v in (("median", m), ("p99", p))},
            "sparse_kb": sparse_path.stat().st_size / 1024, "dense_kb": dense_path.stat().st_size / 1024,
            "jax_version": jax.__version__}


def table(rows: list[dict]) -> str:
    head = ("| network | sparsity | layer density (format) | (a) jax jit median / p99 us | (b) dense numpy "
            "median / p99 us | (c) export median / p99 us | (a) / (c) | (b) / (c) | file dense / export KiB |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        fmt = " ".join(f"{d} {f}" for d, f in zip(r["densities"].split("/"), r["formats"].split("/")))
        lines.append(
            f"| {r['network']} | {r['sparsity']:.2f} | {fmt} | {r['jax_median']:.1f} / {r['jax_p99']:.1f} | "
            f"{r['numpy_median']:.1f} / {r['numpy_p99']:.1f} | {r['export_median']:.1f} / {r['export_p99']:.1f} | "
            f"{r['jax_median'] / r['export_median']:.2f}x | {r['numpy_median'] / r['export_median']:.2f}x | "
            f"{r['dense_kb']:.0f} / {r['sparse_kb']:.0f} ({r['dense_kb'] / r['sparse_kb']:.1f}x) |")
    return "\n".join(lines)


def machine() -> str:
    import scipy
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"python {platform.python_version()} | numpy {np.__version__} | scipy {scipy.__version__} | "
            f"{cpus} of {os.cpu_count()} CPUs | {platform.processor() or platform.machine()} | load average {load}")


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.networks:
            name = next(n for n in NETWORKS if NETWORKS[n]["agent"] == key)
            for s in args.sparsity:
                rows.append(measure(name, NETWORKS[name], s, args, Path(tmp)))
                print(f"  {name} sparsity {s}: done", file=sys.stderr, flush=True)
    print(f"{machine()} | jax {rows[0]['jax_version']} | {args.calls} calls per variant in {args.rounds} rounds")
    print(table(rows))
    import benchlib as bl  # (here: it imports jax, after JAX_PLATFORMS is set)
    first = [r for r in rows if r["network"] == rows[0]["network"]]
    goal = min(first, key=lambda r: abs(r["sparsity"] - 0.95))
    bl.print_ratio(args, goal["numpy_median"] / goal["export_median"])
    return rows


if __name__ == "__main__":
    main()
