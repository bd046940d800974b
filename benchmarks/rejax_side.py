"""The rejax side of peer_rejax.py; runs inside benchmarks/.rejax-venv (rejax 0.1.3, gymnax 0.0.9).

Usage: python rejax_side.py '<json settings>'  -> prints one JSON line (the last line) with
compile seconds, the timed seconds of each repeat and the final mean evaluation return.
It does not import purejaxsparse (that venv has gymnax < 1.0, which rejax 0.1.3 needs).
"""

import json
import sys
import time


def main():
    s = json.loads(sys.argv[1])
    import jax
    import jax.numpy as jnp
    from rejax import DQN
    from rejax.evaluate import evaluate

    algo = DQN.create(
        env="CartPole-v1",
        agent="QNetwork",                              # plain MLP Q-network, 2 hidden layers of 64
        agent_kwargs={"activation": "relu"},
        num_envs=s["num_envs"],
        buffer_size=s["buffer_size"],
        fill_buffer=s["learning_starts"],              # uniform random actions, no updates until then
        batch_size=s["batch_size"],
        learning_rate=s["learning_rate"],
        num_epochs=1,                                  # one gradient step per iteration
        total_timesteps=s["total_steps"],
        eval_freq=s["eval_every"],
        skip_initial_evaluation=True,
        target_update_freq=s["target_update_every"] * s["num_envs"],  # counted in env steps
        polyak=0.0,                                    # hard target copies
        eps_start=s["epsilon"], eps_end=s["epsilon"],  # constant epsilon after the warm-up
        gamma=s["gamma"],
        ddqn=False,                                    # vanilla DQN target
        normalize_observations=False,
    )
    episodes = s["eval_episodes"]

    def eval_callback(algo, ts, rng):  # rejax's own evaluation, with our episode count
        act = algo.make_act(ts)
        return evaluate(act, rng, algo.env, algo.env_params, episodes, algo.env_params.max_steps_in_episode)

    algo = algo.replace(eval_callback=eval_callback)
    keys = jax.random.split(jax.random.PRNGKey(0), s["seeds"])
    train = jax.jit(jax.vmap(algo.train))
    t = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(keys))  # warm-up
    times, ret = [], None
    for i in range(s["repeats"]):
        keys = jax.random.split(jax.random.PRNGKey(1 + i), s["seeds"])
        t = time.perf_counter()
        ts, (lengths, returns) = jax.block_until_ready(compiled(keys))
        times.append(time.perf_counter() - t)
        ret = float(jnp.mean(returns[:, -1]))
    print(json.dumps({"jax": jax.__version__, "rejax_compile_s": compile_s, "times": times,
                      "final_return": ret, "eval_shape": list(returns.shape)}))


if __name__ == "__main__":
    main()
