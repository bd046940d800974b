"""Compact replay: MinAtar's binary observations stored as packed bits and sampled back exactly.

The packing is checked against numpy's packbits, the sampled batches against a float32 replay
fed the same transitions, the envs' `binary_obs` claim against random rollouts, and the bytes
per transition against a hand count.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import envs
import purejaxsparse as pjs
from purejaxsparse import memory, replay

MINATAR = ["Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar", "Seaquest-MinAtar"]


def test_pack_bits_is_numpys_packbits_and_unpacks_exactly():
    obs = np.random.default_rng(0).integers(0, 2, (3, 10, 10, 7)).astype(np.float32)  # 700 bits: not a multiple of 8
    packed = replay.pack_bits(jnp.asarray(obs))
    assert packed.dtype == jnp.uint8 and packed.shape == (3, 88)
    np.testing.assert_array_equal(np.asarray(packed), np.packbits(obs.reshape(3, -1).astype(bool), axis=-1))
    back = replay.unpack_bits(packed, (10, 10, 7), jnp.float32)
    assert back.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(back), obs)


def test_binary_replay_samples_what_a_float_replay_samples():
    """Same transitions, same key: the packed replay's batch equals the float32 replay's, value
    for value and dtype for dtype (a sweep's results do not change)."""
    shape, e, capacity = (10, 10, 4), 2, 16
    rng = np.random.default_rng(1)
    plain = replay.TransitionReplay(capacity)
    packed = replay.TransitionReplay(capacity, binary_obs=True, obs_shape=shape)
    obs0 = jnp.zeros((e, *shape), jnp.float32)
    action0 = jnp.zeros(e, jnp.int32)
    bufs = [plain.init(obs0, action0), packed.init(obs0, action0)]
    for t in range(20):  # wraps the ring
        obs = jnp.asarray(rng.integers(0, 2, (e, *shape)), jnp.float32)
        final = jnp.asarray(rng.integers(0, 2, (e, *shape)), jnp.float32)
        step = (obs, jnp.asarray(rng.integers(0, 3, e), jnp.int32), jnp.asarray(rng.normal(size=e), jnp.float32),
                jnp.asarray(rng.random(e) < 0.2), {"final_obs": final}, None)
        bufs = [r.add(b, t, *step) for r, b in zip((plain, packed), bufs)]
    key = jax.random.PRNGKey(3)
    want, got = plain.sample(key, bufs[0], 20, 64), packed.sample(key, bufs[1], 20, 64)
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


@pytest.mark.parametrize("name", MINATAR)
def test_minatar_observations_are_binary(name):
    """The claim the packed replay rests on: every entry a random policy sees is 0 or 1."""
    env = envs.make(name, num_envs=8)
    assert env.binary_obs
    n = env.action_space.n

    def step(carry, key):
        state, _ = carry
        k_act, k_env = jax.random.split(key)
        state, obs, *_ = env.step(k_env, state, jax.random.randint(k_act, (env.num_envs,), 0, n))
        return (state, obs), obs

    state, obs = env.reset(jax.random.PRNGKey(0))
    _, seen = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks))((state, obs), jax.random.split(jax.random.PRNGKey(1), 300))
    seen = np.asarray(seen)
    assert np.isin(seen, (0.0, 1.0)).all()
    assert seen.any()  # not all zeros: the check looked at real frames


def test_vector_envs_are_not_binary():
    assert not envs.make("CartPole-v1").binary_obs


def test_minatar_transition_is_109_bytes():
    """Breakout-MinAtar's 10x10x4 observation is 400 bits = 50 bytes; obs and next_obs packed,
    plus action (int32), reward (float32) and terminated (bool): 2 x 50 + 4 + 4 + 1 = 109 bytes,
    against 2 x 400 x 4 + 9 = 3,209 as float32 (29x)."""
    capacity = 1000
    config = {"agent": "dqn", "env": "Breakout-MinAtar", "total_steps": 2000, "eval_every": 1000, "eval_episodes": 1,
              "agent_config": {"network": "minatar", "buffer_size": capacity, "learning_starts": 100}}
    train = pjs.make_train(config)
    replay_bytes = memory.state_bytes(train.agent, jax.random.PRNGKey(0), train.hparams())["replay"]
    assert replay_bytes == capacity * 109
    assert replay_bytes * 6 <= capacity * 3209
