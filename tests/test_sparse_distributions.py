"""Layer distributions: the ERK check values (docs/reference.md), an independent float64 solve, traced == eager."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse.sparse import active_counts, layer_sparsities

CARTPOLE = [(4, 512), (512, 512), (512, 2)]
ACROBOT = [(6, 512), (512, 512), (512, 3)]
NATURE = [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64), (3136, 512), (512, 6)]


@pytest.mark.parametrize("shapes, s, expected", [
    (CARTPOLE, 0.9, [0.0, 0.9105, 0.0]),
    (CARTPOLE, 0.98, [0.2996, 0.9891, 0.0]),
    (ACROBOT, 0.98, [0.5626, 0.9899, 0.1302]),
])
def test_erk_check_values(shapes, s, expected):
    np.testing.assert_allclose(np.asarray(layer_sparsities(shapes, s, "erk")), expected, atol=1e-3)


def reference_solve(shapes, s, kernel_dims=True):
    """Straight float64 transcription of the ERK/ER re-solve (one layer made dense per pass)."""
    sizes = np.array([math.prod(x) for x in shapes], float)
    dims = [x if kernel_dims else x[-2:] for x in shapes]
    raw = np.array([sum(d) / math.prod(d) for d in dims])
    dense = np.zeros(len(shapes), bool)
    while True:
        eps = ((1 - s) * sizes.sum() - sizes[dense].sum()) / (raw * sizes)[~dense].sum()
        over = (~dense) & (eps * raw > 1)
        if not over.any():
            break
        dense[np.argmax(np.where(over, raw, -1))] = True  # the densest offender first
    return 1 - np.where(dense, 1.0, eps * raw)


@pytest.mark.parametrize("shapes", [CARTPOLE, ACROBOT, NATURE, [(17, 256), (256, 256), (256, 6)]])
@pytest.mark.parametrize("s", [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])
def test_erk_and_er_match_independent_solve(shapes, s):
    np.testing.assert_allclose(np.asarray(layer_sparsities(shapes, s, "erk")),
                               reference_solve(shapes, s, True), atol=2e-5)
    np.testing.assert_allclose(np.asarray(layer_sparsities(shapes, s, "er")),
                               reference_solve(shapes, s, False), atol=2e-5)


@pytest.mark.parametrize("dist", ["uniform", "er", "erk"])
def test_global_budget_is_met(dist):
    for s in (0.5, 0.9, 0.97):
        per = np.asarray(layer_sparsities(NATURE, s, dist), np.float64)
        sizes = np.array([math.prod(x) for x in NATURE])
        assert np.all((per >= 0) & (per < 1))
        assert abs(((1 - per) * sizes).sum() / sizes.sum() - (1 - s)) < 1e-5


def test_uniform_and_zero_sparsity():
    np.testing.assert_allclose(np.asarray(layer_sparsities(NATURE, 0.8, "uniform")), 0.8, atol=1e-7)
    for dist in ("uniform", "er", "erk"):
        assert np.all(np.asarray(layer_sparsities(CARTPOLE, 0.0, dist)) == 0.0)


def test_er_ignores_conv_spatial_dims_erk_does_not():
    er = np.asarray(layer_sparsities(NATURE, 0.9, "er"))
    erk = np.asarray(layer_sparsities(NATURE, 0.9, "erk"))
    assert not np.allclose(er, erk)
    # for an MLP both are the same formula
    np.testing.assert_allclose(np.asarray(layer_sparsities(CARTPOLE, 0.9, "er")),
                               np.asarray(layer_sparsities(CARTPOLE, 0.9, "erk")))


def test_traced_equals_eager_under_jit_vmap():
    sparsities = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98]
    for dist_id, dist in enumerate(["uniform", "er", "erk"]):
        eager = np.stack([np.asarray(layer_sparsities(NATURE, s, dist)) for s in sparsities])
        traced = jax.jit(jax.vmap(lambda s, d: layer_sparsities(NATURE, s, d)))(
            jnp.asarray(sparsities), jnp.full(len(sparsities), dist_id))
        np.testing.assert_array_equal(eager, np.asarray(traced))
    cp = jax.jit(jax.vmap(lambda s: layer_sparsities(CARTPOLE, s, "erk")))(jnp.asarray([0.9, 0.98]))
    np.testing.assert_allclose(np.asarray(cp), [[0, 0.9105, 0], [0.2996, 0.9891, 0]], atol=1e-3)


def test_active_count_rounding_rule():
    shapes = [(10, 1), (4, 4), (512, 512)]
    for s in (0.25, 0.35, 0.5, 0.9, 0.98):
        per = np.full(3, s, np.float32)
        sizes = np.array([10, 16, 262144], np.float32)
        expected = np.clip(np.round((np.float32(1) - per) * sizes), 0, sizes).astype(np.int32)
        np.testing.assert_array_equal(np.asarray(active_counts(shapes, per)), expected)
    assert int(active_counts([(4, 4)], [0.0])[0]) == 16
    assert int(active_counts([(4, 4)], [1.0])[0]) == 0
    # CartPole 2x512 at 90% ERK: first and last layers dense, the hidden layer takes the rest of
    # the budget, 0.1 * 265216 - 2048 - 1024 = 23449.6 -> 23450
    per = layer_sparsities(CARTPOLE, 0.9, "erk")
    assert active_counts(CARTPOLE, per).tolist() == [2048, 23450, 1024]


def test_bad_input():
    with pytest.raises(ValueError, match="distribution"):
        layer_sparsities(CARTPOLE, 0.9, "gaussian")
    with pytest.raises(ValueError, match="at least 2 dims"):
        layer_sparsities([(5,)], 0.9)
