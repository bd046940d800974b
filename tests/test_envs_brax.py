"""Brax (MJX) smoke test: compiling an MJX step takes tens of seconds on CPU, so just one, marked slow."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import envs


@pytest.mark.slow
def test_halfcheetah_smoke():
    with pytest.raises(ValueError, match=r"'bogus'.*episode_length"):
        envs.make("halfcheetah", bogus=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the 'unmaintained' notice is silenced
        env = envs.make("halfcheetah", num_envs=2, episode_length=2)
    assert env.obs_shape == (17,) and env.max_episode_steps == 2 and env.pixel_obs is False
    assert isinstance(env.action_space, envs.Box) and env.action_space.shape == (6,)
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)

    # an MJX step takes minutes of XLA's CPU optimisations to compile; these checks need none
    fast_compile = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    state, obs = jax.jit(env.reset, compiler_options=fast_compile)(jax.random.PRNGKey(0))
    assert obs.shape == (2, 17) and obs.dtype == jnp.float32
    step = jax.jit(env.step, compiler_options=fast_compile)
    action = jnp.full((2, 6), 0.5)
    outs = []
    for i in range(3):
        state, obs, r, te, tr, info = step(jax.random.PRNGKey(i + 1), state, action)
        outs.append((obs, r, te, tr, info["final_obs"], state.step))
    for obs, r, te, tr, fin, t in outs:
        assert obs.shape == (2, 17) and obs.dtype == jnp.float32 and fin.shape == (2, 17)
        assert r.shape == (2,) and r.dtype == jnp.float32 and np.isfinite(np.asarray(r)).all()
        assert te.dtype == jnp.bool_ and tr.dtype == jnp.bool_ and not te.any()  # halfcheetah never falls
    (o1, _, _, tr1, f1, t1), (o2, _, _, tr2, f2, t2), (_, _, _, tr3, _, t3) = outs
    assert not tr1.any() and tr2.all() and not tr3.any()  # time limit of 2 steps
    np.testing.assert_array_equal(np.asarray(t1), [1, 1])
    np.testing.assert_array_equal(np.asarray(t2), [0, 0])
    np.testing.assert_array_equal(np.asarray(t3), [1, 1])
    np.testing.assert_array_equal(f1, o1)  # not done: final_obs == obs
    assert not np.allclose(f2, o2)  # done: obs is a fresh reset, final_obs the end of the episode
    assert np.abs(np.asarray(o2)).max() < 0.5  # reset noise is 0.1-scale


BRAX_EXPECTED = {  # name -> (obs_shape, action dim, action bound)
    "halfcheetah": ((17,), 6, 1.0),
    "hopper": ((11,), 3, 1.0),
    "walker2d": ((17,), 6, 1.0),
    "ant": ((27,), 8, 1.0),
    "humanoid": ((244,), 17, 0.4),  # humanoid's motors have ctrlrange [-0.4, 0.4]
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BRAX_EXPECTED))
def test_brax_env_traces(name):
    """Every registered brax env traces reset and step (no compile) with a type-stable state."""
    obs_shape, act, bound = BRAX_EXPECTED[name]
    env = envs.make(name, num_envs=2)
    assert env.obs_shape == obs_shape and env.max_episode_steps == 1000
    assert env.action_space.shape == (act,)
    np.testing.assert_allclose(env.action_space.high, bound)
    np.testing.assert_allclose(env.action_space.low, -bound)
    state, obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    action = jax.ShapeDtypeStruct((2, act), jnp.float32)
    new_state, obs2, r, te, tr, info = jax.eval_shape(env.step, jax.random.PRNGKey(0), state, action)
    assert obs.shape == obs2.shape == info["final_obs"].shape == (2, *obs_shape)
    assert r.shape == te.shape == tr.shape == (2,) and te.dtype == tr.dtype == jnp.bool_
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
        assert a.shape == b.shape and a.dtype == b.dtype
