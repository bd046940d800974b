"""A sparse-training method defined outside the package, run beside RigL in one sweep.

GraNet (Liu, Chen, Chen, Atashgahi, Yin, Kou, Shen, Pechenizkiy, Wang and Mocanu, "Sparse
Training via Boosting Pruning Plasticity with Neuroregeneration", NeurIPS 2021) prunes a dense
network gradually by magnitude on the polynomial schedule of Zhu & Gupta, and at every pruning
step also regrows ("neuroregeneration") a cosine-decaying fraction of the remaining weights
where the dense gradient is largest, after dropping as many of the smallest. As a declaration:
a dense start, the polynomial schedule, regrow on, |w| to keep and |grad| to grow.

    python examples/custom_method.py            # DQN on CartPole, 3 seeds x 30k steps: a few minutes on 2 CPU cores
    python examples/custom_method.py --smoke    # a tiny sweep, well under a minute

It writes the sweep (results.csv, runs.csv, config.yaml) to --out (default: a temporary
directory) and prints each method's mean final evaluation return.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import yaml

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.cli import main as purejaxsparse_cli
from purejaxsparse.results import read_results

GRANET = pjs.Method(
    "granet",
    init="dense",               # trains dense until pruning starts
    schedule="polynomial",      # prunes at start + k update_interval in (start, end], to s_f at end
    regrow=True,                # each pruning step also swaps f(t) of the weights (cosine-decaying drop_fraction)
    drop=sp.magnitude_score,    # keep the largest |w|
    grow=sp.gradient_score,     # regrow where |dL/dw| is largest
)

SIZES = {  # the quickstart's DQN on CartPole, and a tiny version of it
    "full": dict(total_steps=30_000, eval_every=1_000, eval_episodes=10, seeds=3, hidden=[128, 128],
                 batch_size=64, buffer_size=30_000, learning_starts=1_000, update_interval=500, start=5_000, end=22_000),
    "smoke": dict(total_steps=2_000, eval_every=1_000, eval_episodes=3, seeds=1, hidden=[32, 32],
                  batch_size=32, buffer_size=2_000, learning_starts=500, update_interval=100, start=200, end=1_200),
}


def sweep_config(size: dict) -> dict:
    return {
        "name": "granet_vs_rigl", "agent": "dqn", "env": "CartPole-v1",
        "total_steps": size["total_steps"], "eval_every": size["eval_every"], "eval_episodes": size["eval_episodes"],
        "agent_config": {k: size[k] for k in ("hidden", "batch_size", "buffer_size", "learning_starts")},
        "hparams": {"sparsity": 0.9, "drop_fraction": 0.5, "update_interval": size["update_interval"],
                    "end": size["end"], "target_update_every": 100},
        "method_defaults": {"granet": {"start": size["start"]}},  # pruning starts after some dense training
        "sweep": {"seed": size["seeds"], "method": ["rigl", "granet"]},
    }


def final_returns(out: Path) -> dict[str, float]:
    """Mean over seeds of each method's last evaluation return."""
    results = read_results(out)
    last = results[results["step"] == results["step"].max()]
    return last.groupby("method")["eval_return"].mean().to_dict()


def run(args) -> int:
    pjs.register_method(GRANET)  # now "granet" is a method name like "rigl"
    size = SIZES["smoke" if args.smoke else "full"]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "sweep"
        config = Path(tmp) / "granet_vs_rigl.yaml"
        config.write_text(yaml.safe_dump(sweep_config(size), sort_keys=False))
        code = purejaxsparse_cli(["run", str(config), "--out", str(out), "--no-report", "--no-progress"])
        if code:
            return code
        scores = final_returns(out)
    print(f"final eval_return at env step {size['total_steps']:,} (mean of {size['seeds']} seed(s)):")
    for method in ("rigl", "granet"):
        print(f"  {method:<8} {scores[method]:.1f}")
    return 0 if all(math.isfinite(v) for v in scores.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny sweep (well under a minute), for CI")
    parser.add_argument("--out", type=Path, help="sweep directory to write (new or empty; default: a temporary one)")
    sys.exit(run(parser.parse_args()))
