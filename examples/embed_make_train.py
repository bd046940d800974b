"""Embedding purejaxsparse in your own JAX code: `make_train` on a small config, then every run
(several seeds x two hyperparameter settings) as ONE jit-compiled, vmapped program.

    python examples/embed_make_train.py                  # tiny: well under a minute on a laptop CPU
    python examples/embed_make_train.py --seeds 5 --total-steps 50000

Prints one line per run with its final evaluation return.
"""

import argparse

import jax
import numpy as np

import purejaxsparse as pjs

SETTINGS = [{"method": "dense"}, {"method": "rigl", "sparsity": 0.9}]
"""The two hyperparameter settings compared (per-run, traced: one program runs both)."""


def config(total_steps: int) -> dict:
    """DQN on CartPole, small enough for a CPU; evaluated 4 times per run."""
    return {"agent": "dqn", "env": "CartPole-v1", "total_steps": total_steps, "eval_every": total_steps // 4,
            "eval_episodes": 4,
            "agent_config": {"hidden": [32, 32], "batch_size": 32, "buffer_size": 2_000,
                             "learning_starts": total_steps // 10},
            "hparams": {"update_interval": 100, "end": total_steps * 3 // 4}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per setting")
    parser.add_argument("--total-steps", type=int, default=2_000, help="env steps per run (a multiple of 4)")
    args = parser.parse_args(argv)

    train = pjs.make_train(config(args.total_steps))  # callable: train(key, hparams) -> (state, metrics)
    print(f"{train.agent.name} on {train.config['env']}: {train.agent.total_params():,} parameters, "
          f"{train.agent.num_evals} evaluations per run")
    runs = [(setting, seed) for setting in SETTINGS for seed in range(args.seeds)]
    hparams = pjs.stack_hparams([train.hparams(**setting) for setting, _ in runs])  # leading runs axis
    keys = jax.vmap(jax.random.PRNGKey)(np.array([seed for _, seed in runs], np.uint32))
    _, metrics = jax.jit(jax.vmap(train))(keys, hparams)
    final = np.asarray(metrics["eval_return"])[:, -1]
    for r, ((setting, seed), ret) in enumerate(zip(runs, final)):
        name = ", ".join(f"{k}={v}" for k, v in setting.items())
        print(f"run {r}: {name}, seed {seed}: final eval return {ret:.1f}")


if __name__ == "__main__":
    main()
