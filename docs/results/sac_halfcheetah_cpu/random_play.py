"""Return of uniformly random play on Brax halfcheetah: the floor the study's scores are read
against. Uniform actions in the env's action box, full 1000-step episodes, with the evaluation
the sweeps use (`purejaxsparse.envs.evaluate`).

    python docs/results/sac_halfcheetah_cpu/random_play.py [EPISODES] [SEED]
"""

import sys

import jax
import numpy as np

from purejaxsparse import envs


def random_returns(episodes: int, seed: int) -> np.ndarray:
    env = envs.make("halfcheetah")
    low, high = env.action_space.low, env.action_space.high

    def policy(key, obs):
        return jax.random.uniform(key, (obs.shape[0],) + low.shape, minval=low, maxval=high)

    return np.asarray(jax.jit(lambda k: envs.evaluate(env, policy, k, episodes))(jax.random.PRNGKey(seed)))


if __name__ == "__main__":
    episodes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    ret = random_returns(episodes, seed)
    print(f"random play, {episodes} episodes (seed {seed}): mean {ret.mean():.1f}, std {ret.std():.1f}, "
          f"min {ret.min():.1f}, max {ret.max():.1f}")
