"""Tests for the `envs` package (gymnax backend and evaluate). Fast on CPU; brax is in test_envs_brax.py."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import envs

E = 3

# name -> (obs_shape, action space, default time limit)
GYMNAX_EXPECTED = {
    "CartPole-v1": ((4,), envs.Discrete(2), 500),
    "Acrobot-v1": ((6,), envs.Discrete(3), 500),
    "MountainCar-v0": ((2,), envs.Discrete(3), 200),
    "Pendulum-v1": ((3,), envs.Box(low=np.array([-2.0]), high=np.array([2.0]), shape=(1,)), 200),
    "MountainCarContinuous-v0": ((2,), envs.Box(low=np.array([-1.0]), high=np.array([1.0]), shape=(1,)), 999),
    "Asterix-MinAtar": ((10, 10, 4), envs.Discrete(5), 1000),
    "Breakout-MinAtar": ((10, 10, 4), envs.Discrete(3), 1000),
    "Freeway-MinAtar": ((10, 10, 7), envs.Discrete(3), 2500),
    "SpaceInvaders-MinAtar": ((10, 10, 6), envs.Discrete(4), 1000),
    "Seaquest-MinAtar": ((10, 10, 10), envs.Discrete(6), 1000),
}


def random_actions(env, key):
    sp = env.action_space
    if isinstance(sp, envs.Discrete):
        return jax.random.randint(key, (env.num_envs,), 0, sp.n)
    return jax.random.uniform(key, (env.num_envs, *sp.shape), minval=sp.low, maxval=sp.high)


def balance(obs):
    """A CartPole controller that keeps the pole up for hundreds of steps."""
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(jnp.int32)


# ---------------------------------------------------------------- registry


def test_registered_and_errors():
    names = envs.registered()
    for n in list(GYMNAX_EXPECTED) + ["halfcheetah", "hopper", "walker2d", "ant", "humanoid"]:
        assert n in names
    with pytest.raises(ValueError, match="CartPole-v1"):
        envs.make("NoSuchEnv-v0")
    with pytest.raises(ValueError, match=r"'bogus'.*max_steps_in_episode"):
        envs.make("CartPole-v1", bogus=1)
    for key, value, allowed in (("max_steps_in_episode", -5, ">= 1"), ("max_steps_in_episode", 0, ">= 1"),
                                ("max_steps_in_episode", 2.5, "an integer"), ("gravity", "high", "a number"),
                                ("gravity", float("nan"), "finite"), ("max_steps_in_episode", True, "an integer")):
        with pytest.raises(ValueError, match=f"{key}.*allowed: .*{allowed}"):
            envs.make("CartPole-v1", **{key: value})
    assert envs.make("MountainCar-v0", min_position=-1.5).params.min_position == -1.5  # negatives are fine


def test_bad_env_parameter_is_a_config_error():
    from purejaxsparse.config import make_env
    from purejaxsparse.fields import ConfigError
    with pytest.raises(ConfigError, match=r"^env: CartPole-v1: parameter 'max_steps_in_episode' got -5"):
        make_env({"name": "CartPole-v1", "max_steps_in_episode": -5}, 1)


def test_import_is_lazy():
    code = "import sys, purejaxsparse.envs; print('brax' in sys.modules, 'gymnax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_identity_and_with_num_envs():
    a = envs.make("CartPole-v1", num_envs=4, max_steps_in_episode=200)
    b = envs.make("CartPole-v1", num_envs=4, max_steps_in_episode=200)
    assert a == b and hash(a) == hash(b)
    assert a != envs.make("CartPole-v1", num_envs=4)
    c = a.with_num_envs(7)
    assert c.num_envs == 7 and a.num_envs == 4 and c.max_episode_steps == 200 and c != a
    assert a.pixel_obs is False
    assert {a: 1}[b] == 1


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", list(GYMNAX_EXPECTED))
def test_gymnax_shapes_dtypes(name):
    obs_shape, space, limit = GYMNAX_EXPECTED[name]
    env = envs.make(name, num_envs=E)
    assert env.name == name and env.num_envs == E
    assert env.obs_shape == obs_shape
    assert env.action_space == space
    assert env.max_episode_steps == limit
    assert env.pixel_obs is False

    def rollout(key):
        k0, k1 = jax.random.split(key)
        state, obs = env.reset(k0)

        def body(carry, k):
            state, _ = carry
            ka, ks = jax.random.split(k)
            state, obs, r, te, tr, info = env.step(ks, state, random_actions(env, ka))
            return (state, obs), (obs, r, te, tr, info["final_obs"])

        # lax.scan also checks the state is a type-stable carry (reset vs step).
        (state, _), outs = jax.lax.scan(body, (state, obs), jax.random.split(k1, 4))
        return obs, state, outs

    obs0, state, (obs, r, te, tr, fin) = jax.jit(rollout)(jax.random.PRNGKey(0))
    assert obs0.shape == (E, *obs_shape) and obs0.dtype == jnp.float32
    assert obs.shape == (4, E, *obs_shape) and obs.dtype == jnp.float32
    assert fin.shape == obs.shape and fin.dtype == jnp.float32
    assert r.shape == (4, E) and r.dtype == jnp.float32
    assert te.shape == (4, E) and te.dtype == jnp.bool_
    assert tr.shape == (4, E) and tr.dtype == jnp.bool_
    assert state.step.shape == (E,) and state.step.dtype == jnp.int32
    assert np.isfinite(np.asarray(obs)).all() and np.isfinite(np.asarray(r)).all()
    if name.endswith("MinAtar"):  # boolean images come out as 0/1 floats
        assert set(np.unique(np.asarray(obs)).tolist()) <= {0.0, 1.0}
        assert np.asarray(obs).max() == 1.0


def test_box_actions_are_clipped():
    env = envs.make("Pendulum-v1", num_envs=2)
    state, _ = env.reset(jax.random.PRNGKey(0))
    k = jax.random.PRNGKey(1)
    _, o_big, r_big, *_ = env.step(k, state, jnp.full((2, 1), 100.0))
    _, o_max, r_max, *_ = env.step(k, state, jnp.full((2, 1), 2.0))
    _, o_zero, *_ = env.step(k, state, jnp.zeros((2, 1)))
    np.testing.assert_array_equal(o_big, o_max)
    np.testing.assert_array_equal(r_big, r_max)
    assert not np.allclose(o_big, o_zero)


# ---------------------------------------------------------------- episode ends


def run_steps(env, policy, n, key=0):
    """Step `n` times with `policy(obs)`; returns per-step stacked outputs and the state trace."""

    def f(key):
        k0, k1 = jax.random.split(key)
        state, obs = env.reset(k0)

        def body(carry, k):
            state, obs = carry
            new_state, new_obs, r, te, tr, info = env.step(k, state, policy(obs))
            return (new_state, new_obs), dict(
                obs_before=obs, obs=new_obs, r=r, te=te, tr=tr, fin=info["final_obs"], t=new_state.step
            )

        return jax.lax.scan(body, (state, obs), jax.random.split(k1, n))[1]

    return jax.tree.map(np.asarray, jax.jit(f)(jax.random.PRNGKey(key)))


def test_truncation_at_cap():
    env = envs.make("CartPole-v1", num_envs=4, max_steps_in_episode=10)
    out = run_steps(env, balance, 25)
    # The controller keeps the pole up, so every episode ends by the time limit only.
    assert not out["te"].any()
    ends = np.nonzero(out["tr"].all(axis=1))[0]
    np.testing.assert_array_equal(ends, [9, 19])  # steps 10 and 20
    assert out["tr"].sum() == 8
    # counter restarts at 0 on the reset and counts up again
    np.testing.assert_array_equal(out["t"][:, 0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0] * 2 + [1, 2, 3, 4, 5])
    # final_obs is the last obs of the finished episode, the returned obs a fresh one
    i = 9
    assert not np.allclose(out["fin"][i], out["obs"][i])
    assert np.abs(out["obs"][i]).max() <= 0.05  # CartPole resets uniformly in [-0.05, 0.05]
    assert np.abs(out["fin"][i] - out["obs_before"][i]).max() < 0.5  # continues the old episode
    # where not done, final_obs == obs
    nd = ~(out["te"] | out["tr"])
    np.testing.assert_array_equal(out["fin"][nd], out["obs"][nd])
    assert (out["r"] == 1.0).all()


def first_end(out):
    return int(np.nonzero(out["te"][:, 0] | out["tr"][:, 0])[0][0])


def test_termination_and_auto_reset():
    env = envs.make("CartPole-v1", num_envs=1)
    push_right = lambda obs: jnp.ones(obs.shape[0], jnp.int32)
    out = run_steps(env, push_right, 40)
    i = first_end(out)
    assert 5 <= i < 30
    assert out["te"][i, 0] and not out["tr"][i, 0]
    fin = out["fin"][i, 0]
    assert abs(fin[2]) > 12 * 2 * np.pi / 360 or abs(fin[0]) > 2.4  # the pole fell (or cart left)
    assert np.abs(out["obs"][i, 0]).max() <= 0.05  # fresh reset-distribution obs
    assert out["t"][i, 0] == 0 and out["t"][i + 1, 0] == 1
    assert not out["te"][i + 1, 0]  # the new episode goes on


def test_terminated_wins_when_both_hold():
    push_right = lambda obs: jnp.ones(obs.shape[0], jnp.int32)
    i = first_end(run_steps(envs.make("CartPole-v1", num_envs=1), push_right, 40))
    # Same keys, cap set to exactly the step where the pole falls: both conditions hold.
    out = run_steps(envs.make("CartPole-v1", num_envs=1, max_steps_in_episode=i + 1), push_right, 40)
    assert first_end(out) == i
    assert out["te"][i, 0] and not out["tr"][i, 0]


def test_vmap_over_runs_matches_single_runs():
    env = envs.make("Breakout-MinAtar", num_envs=2, max_steps_in_episode=5)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)

    def roll(key):
        k0, k1 = jax.random.split(key)
        state, obs = env.reset(k0)

        def body(state, k):
            ka, ks = jax.random.split(k)
            state, obs, r, te, tr, info = env.step(ks, state, random_actions(env, ka))
            return state, (obs, r, te, tr)

        return jax.lax.scan(body, state, jax.random.split(k1, 8))[1]

    batched = jax.jit(jax.vmap(roll))(keys)
    assert batched[0].shape == (3, 8, 2, 10, 10, 4)
    assert batched[3].any()  # the cap of 5 was hit within 8 steps
    for r in range(3):
        single = jax.jit(roll)(keys[r])
        for b, s in zip(batched, single):
            np.testing.assert_array_equal(np.asarray(b[r]), np.asarray(s))


# ---------------------------------------------------------------- evaluate


def random_policy(key, obs):
    return jax.random.randint(key, (obs.shape[0],), 0, 2)


def test_evaluate_random_cartpole():
    env = envs.make("CartPole-v1", num_envs=16)
    ret = jax.jit(lambda k: envs.evaluate(env, random_policy, k, 64))(jax.random.PRNGKey(0))
    assert ret.shape == (64,) and ret.dtype == jnp.float32
    assert 10.0 <= float(ret.mean()) <= 40.0
    assert (ret >= 1).all() and np.all(np.asarray(ret) == np.round(np.asarray(ret)))

    ret8 = envs.evaluate(env, random_policy, jax.random.PRNGKey(1), 8)
    assert ret8.shape == (8,)

    capped = envs.make("CartPole-v1", max_steps_in_episode=10)
    ret10 = envs.evaluate(capped, random_policy, jax.random.PRNGKey(2), 32)
    assert (ret10 <= 10).all() and float(ret10.max()) == 10.0


def test_evaluate_counts_first_episode_only():
    env = envs.make("CartPole-v1", max_steps_in_episode=60)

    def policy(key, obs):
        # env 0 always pushes right (falls within ~10 steps), the others balance to the cap
        return jnp.where(jnp.arange(obs.shape[0]) == 0, 1, balance(obs))

    ret = np.asarray(envs.evaluate(env, policy, jax.random.PRNGKey(0), 4))
    assert ret[0] < 30  # later episodes of env 0 (while the others ran on) are not added
    np.testing.assert_array_equal(ret[1:], 60.0)


def test_evaluate_jit_vmap_over_runs_and_traced_noise():
    env = envs.make("CartPole-v1", max_steps_in_episode=100)
    # per-run linear policy: run 0 balances, run 1 always pushes left, run 2 pushes by cart velocity
    w = jnp.array([[0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    stds = jnp.array([0.0, 0.0, 0.1])

    def eval_run(key, w, std):
        policy = lambda k, obs: (obs @ w > 0).astype(jnp.int32)
        return envs.evaluate(env, policy, key, 8, obs_noise_std=std)

    rets = jax.jit(jax.vmap(eval_run))(keys, w, stds)
    assert rets.shape == (3, 8)
    for r in range(3):
        np.testing.assert_allclose(rets[r], jax.jit(eval_run)(keys[r], w[r], stds[r]))
    assert float(rets[0].mean()) == 100.0 and float(rets[1].mean()) < 30.0

    # traced zero noise == static zero noise; big noise hurts a policy that reads the obs
    f = jax.jit(eval_run)
    static0 = envs.evaluate(env, lambda k, o: (o @ w[0] > 0).astype(jnp.int32), keys[0], 8)
    np.testing.assert_array_equal(f(keys[0], w[0], jnp.float32(0.0)), static0)
    assert float(f(keys[0], w[0], jnp.float32(5.0)).mean()) < 50.0


def test_evaluate_noise_does_not_touch_env_state():
    env = envs.make("CartPole-v1")
    const = lambda k, obs: jnp.zeros(obs.shape[0], jnp.int32)  # ignores what it sees
    f = jax.jit(lambda std: envs.evaluate(env, const, jax.random.PRNGKey(0), 8, obs_noise_std=std))
    np.testing.assert_array_equal(f(0.0), f(100.0))


def test_evaluate_box_and_minatar():
    pend = envs.make("Pendulum-v1", max_steps_in_episode=20)
    zero = lambda k, obs: jnp.zeros((obs.shape[0], 1))
    ret = envs.evaluate(pend, zero, jax.random.PRNGKey(0), 4)
    assert ret.shape == (4,) and (ret < 0).all()  # Pendulum rewards are costs

    brk = envs.make("Breakout-MinAtar", max_steps_in_episode=50)
    rnd = lambda k, obs: jax.random.randint(k, (obs.shape[0],), 0, 3)
    ret = envs.evaluate(brk, rnd, jax.random.PRNGKey(0), 4, obs_noise_std=0.1)
    assert ret.shape == (4,) and (ret >= 0).all() and np.isfinite(np.asarray(ret)).all()
