"""Schedules against their formulas, eager and traced."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxsparse import sparse as sp


def test_polynomial_sparsity():
    t0, t1, sf = 20_000, 75_000, 0.9
    steps = np.array([0, 19_999, 20_000, 30_000, 47_500, 74_999, 75_000, 90_000])
    want = np.where(steps < t0, 0.0, np.where(steps >= t1, sf,
                    sf * (1 - (1 - (steps - t0) / (t1 - t0)) ** 3)))
    got = jax.jit(jax.vmap(lambda t: sp.polynomial_sparsity(t, sf, t0, t1)))(jnp.asarray(steps))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
    assert np.isclose(float(sp.polynomial_sparsity(47_500, sf, t0, t1)), sf * (1 - 0.5 ** 3), rtol=1e-6)


def test_cosine_drop_fraction():
    f0, T = 0.5, 75_000
    assert np.isclose(float(sp.cosine_drop_fraction(0, f0, T)), f0)
    assert np.isclose(float(sp.cosine_drop_fraction(T // 2, f0, T)), f0 / 2, atol=1e-4)
    assert np.isclose(float(sp.cosine_drop_fraction(T, f0, T)), 0.0, atol=1e-7)
    assert np.isclose(float(sp.cosine_drop_fraction(2 * T, f0, T)), 0.0, atol=1e-7)
    t = np.linspace(0, T, 7)
    np.testing.assert_allclose(np.asarray(sp.cosine_drop_fraction(jnp.asarray(t), f0, T)),
                               f0 / 2 * (1 + np.cos(np.pi * t / T)), atol=1e-6)


def _rigl_is_update_iter(step, update_freq, last_update_step):
    """rigl/rigl_tf2/mask_updaters.py UpdateSchedule.is_update_iter, transcribed."""
    if last_update_step < 0:
        valid = True
    elif last_update_step == 0:
        valid = False
    else:
        valid = step <= last_update_step
    return valid and step % update_freq == 0


def test_update_predicate():
    steps = jnp.arange(0, 60)
    # start 0: the original's rule, step 0 (before any training) included
    for freq, last in ((10, 50), (25, 50), (7, 40)):
        want = [t for t in range(60) if _rigl_is_update_iter(t, freq, last)]
        got = np.flatnonzero(np.asarray(sp.is_update_step(steps, 0, last, freq))).tolist()
        assert got[0] == 0
        assert got == want or got == want + [last]  # plus t == end when off the grid
    got = np.asarray(sp.is_update_step(steps, 10, 45, 10))
    assert np.flatnonzero(got).tolist() == [10, 20, 30, 40, 45]  # from start, on the grid, and at end
    traced = jax.jit(jax.vmap(lambda i: sp.is_update_step(steps, 0, 30, i)))(jnp.array([10, 15]))
    assert np.flatnonzero(np.asarray(traced[0])).tolist() == [0, 10, 20, 30]
    assert np.flatnonzero(np.asarray(traced[1])).tolist() == [0, 15, 30]
