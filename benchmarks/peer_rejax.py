"""Dense DQN on CartPole-v1: purejaxsparse against rejax (a vmapped JAX RL library), same settings.

Both sides train the same number of seeds as one `jax.jit(jax.vmap(train))` program, with the
same hyperparameters (printed), the same network (MLP 64-64 ReLU: rejax's DQN network is fixed
at 64-64), one env, one gradient step per env step after `learning_starts` uniformly random
steps, hard target copies, constant epsilon, and an evaluation of the same number of episodes
every `eval_every` steps (no evaluation at step 0). Each side: AOT compile (excluded, printed
apart), one untimed warm-up training, then timed trainings (fastest kept), whole trainings from
init to the last evaluation.

rejax 0.1.3 (the newest on PyPI) needs gymnax < 1.0 (its DQN unpacks gymnax 0.0.x's 5-value
`step`), and this project uses gymnax 1.0.1, so the rejax side runs in its own virtual
environment, benchmarks/.rejax-venv (built on first use with pip: rejax==0.1.3, gymnax==0.0.9
and THIS process's jax version, so both sides run the same XLA), as a subprocess
(benchmarks/rejax_side.py) that prints its timings as JSON. Ours runs in this process.

Differences that remain (semantics, not settings): rejax samples its minibatch without
replacement (`jax.random.choice(..., replace=False, p=...)`, O(buffer) per step), we sample
with replacement (O(batch)); rejax's loss is 0.5*TD^2 (optax.l2_loss), ours TD^2; our
evaluation also computes the sparsity and dormant-neuron metrics (on 256 replay states); our
dense runs still carry (all-ones) masks, since method is a traced per-run value.

    python benchmarks/peer_rejax.py --quick     # 16 seeds x 10k steps, 2-core CPU, ~4 minutes
    python benchmarks/peer_rejax.py             # 128 seeds x 100k steps (GPU)
    python benchmarks/peer_rejax.py --smoke     # 2 seeds x 300 steps: runs end to end; without a
                                                # rejax venv it runs our side only (never builds one)

Last line: `ratio: X` = rejax time / our time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import benchlib as bl

HERE = Path(__file__).resolve().parent
VENV = HERE / ".rejax-venv"


def parse_args(argv=None):
    ap = bl.parser(__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=None, help="smoke: 2, quick: 16, full: 128")
    ap.add_argument("--total-steps", type=int, default=None, help="smoke: 300, quick: 10000, full: 100000")
    ap.add_argument("--buffer-sizes", type=int, nargs="+", default=None,
                    help="one comparison per replay size (default 50000 10000, smoke: 300; rejax's "
                         "CartPole config uses 50k; rejax's sampling costs O(buffer) per step, ours O(batch))")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="default 100 as rejax's CartPole config (smoke: 8)")
    ap.add_argument("--learning-starts", type=int, default=None,
                    help="default 5000, rejax's CartPole fill_buffer (smoke: 100)")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="default 2500, rejax's CartPole eval_freq (smoke: 100)")
    ap.add_argument("--eval-episodes", type=int, default=None, help="default 10 (smoke: 2)")
    ap.add_argument("--venv", type=Path, default=VENV, help="the rejax virtual environment")
    ap.add_argument("--jax-spec", default=None,
                    help="pip requirement for jax in the rejax venv (default: this process's jax "
                         "version, with the cuda13 or cuda12 extra on a GPU, as this process has)")
    args = ap.parse_args(argv)
    args.seeds = args.seeds or bl.preset(args, smoke=2, quick=16, full=128)
    args.total_steps = args.total_steps or bl.preset(args, smoke=300, quick=10_000, full=100_000)
    args.buffer_sizes = args.buffer_sizes or bl.preset(args, smoke=[300], quick=[50_000, 10_000],
                                                       full=[50_000, 10_000])
    args.batch_size = args.batch_size or bl.preset(args, smoke=8, quick=100, full=100)
    args.learning_starts = args.learning_starts or bl.preset(args, smoke=100, quick=5000, full=5000)
    args.eval_every = args.eval_every or bl.preset(args, smoke=100, quick=2500, full=2500)
    args.eval_episodes = args.eval_episodes or bl.preset(args, smoke=2, quick=10, full=10)
    args.repeats = args.repeats or bl.preset(args, smoke=1, quick=2, full=2)
    return args


def settings(args, buffer_size: int) -> dict:
    """The hyperparameters both sides use."""
    return {"seeds": args.seeds, "total_steps": args.total_steps, "num_envs": 1,
            "buffer_size": buffer_size, "batch_size": args.batch_size,
            "learning_starts": args.learning_starts, "learning_rate": 1e-3, "gamma": 0.99,
            "epsilon": 0.05, "eval_epsilon": 0.005, "target_update_every": 100,
            "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
            "hidden": [64, 64], "activation": "relu", "repeats": args.repeats}


def ensure_venv(venv: Path, jax_spec: str | None, build: bool = True) -> Path | None:
    """The rejax venv's python, building the venv with pip on first use (build=False: None
    where there is no working venv)."""
    import jax
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import rejax, gymnax, jax; print(jax.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    if not build:
        return None
    if jax_spec is None:
        extra = "cpu"
        if jax.default_backend() == "gpu":  # the CUDA plugin this process runs on: cuda13 or cuda12
            from importlib import metadata
            extra = "cuda12"
            try:
                metadata.version("jax-cuda13-plugin")
                extra = "cuda13"
            except metadata.PackageNotFoundError:
                pass
        jax_spec = f"jax[{extra}]=={jax.__version__}"
    print(f"# building {venv} (pip install rejax==0.1.3 gymnax==0.0.9 {jax_spec}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "rejax==0.1.3", "gymnax==0.0.9", jax_spec],
                   check=True)
    subprocess.run(probe, check=True, capture_output=True)
    return python


def run_ours(s: dict) -> dict:
    import jax
    import purejaxsparse as pjs

    config = bl.dqn_config(hidden=s["hidden"], batch_size=s["batch_size"], buffer_size=s["buffer_size"],
                           learning_starts=s["learning_starts"], total_steps=s["total_steps"],
                           eval_every=s["eval_every"], eval_episodes=s["eval_episodes"],
                           num_envs=s["num_envs"], train_every=1,
                           hparams={"method": "dense", "learning_rate": s["learning_rate"],
                                    "gamma": s["gamma"], "epsilon": s["epsilon"],
                                    "eval_epsilon": s["eval_epsilon"],
                                    "target_update_every": s["target_update_every"],
                                    "weight_decay": 0.0, "huber": False})
    train = pjs.make_train(config)
    _, hps = bl.run_hparams(config, ["dense"] * s["seeds"])
    run = jax.jit(jax.vmap(train))
    keys = jax.random.split(jax.random.PRNGKey(0), s["seeds"])
    compiled, compile_s = bl.compile_aot(run, keys, hps)
    jax.block_until_ready(compiled(keys, hps))  # warm-up
    times, ret = [], None
    for i in range(s["repeats"]):
        keys = jax.random.split(jax.random.PRNGKey(1 + i), s["seeds"])
        (state, metrics), sec = bl.timed(compiled, keys, hps)
        times.append(sec)
        ret = float(metrics["eval_return"][:, -1].mean())
    return {"compile_s": compile_s, "times": times, "final_return": ret,
            "eval_shape": list(metrics["eval_return"].shape)}


def run_rejax(python: Path, s: dict) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(HERE / "rejax_side.py"), json.dumps(s)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"rejax side failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["compile_s"] = out.pop("rejax_compile_s")
    return out


def main(argv=None):
    args = parse_args(argv)
    bl.pin_cpus(args.cpus)
    python = ensure_venv(args.venv, args.jax_spec, build=not args.smoke)
    sides = ("ours", "rejax") if python else ("ours",)
    s = settings(args, args.buffer_sizes[0])
    print(f"# peer_rejax: dense DQN on CartPole-v1, {s['seeds']} seeds x {s['total_steps']:,} env steps, "
          f"{s['repeats']} timed trainings per side (fastest kept), compile excluded")
    print(f"# {bl.machine_line()}")
    print("# settings (both sides): " + ", ".join(f"{k}={v}" for k, v in s.items()
                                                  if k not in ("repeats", "buffer_size")))
    steps = s["seeds"] * s["total_steps"]
    rows, ratios = [], []
    for buffer_size in args.buffer_sizes:
        s = settings(args, buffer_size)
        results, load = {}, {}
        for side in sides:
            load[side] = bl.load_average()
            results[side] = run_ours(s) if side == "ours" else run_rejax(python, s)
            print(f"#   buffer {buffer_size} {side}: {json.dumps(results[side])}", flush=True)
        ratio = min(results["rejax"]["times"]) / min(results["ours"]["times"]) if python else float("nan")
        ratios.append(ratio)
        for side, name in (("ours", "purejaxsparse (this repo)"), ("rejax", "rejax 0.1.3"))[:len(sides)]:
            r = results[side]
            best = min(r["times"])
            rows.append([buffer_size, name, f"{r['compile_s']:.1f}", best, f"{steps / best:,.0f}",
                         f"{r['final_return']:.1f}", f"{ratio:.2f}x" if side == "rejax" else "",
                         load[side]])
    print()
    print(bl.table(["buffer", "library", "compile s", "train s (all seeds)", "env steps/s",
                    "final eval return", "rejax / ours", "load average at start"], rows))
    if not python:
        print(f"# rejax side skipped: no working rejax venv at {args.venv} (--smoke never builds one; "
              f"run --quick once with network to build it), so the ratio is nan")
    print("(ratio below: the smallest over the buffer sizes)")
    bl.print_ratio(args, min(ratios))
    return min(ratios)


if __name__ == "__main__":
    main()
