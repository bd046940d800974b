"""Measurements: active counts, actual sparsity, dormant fraction against plain numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxsparse import sparse as sp


def numpy_dormant(acts, tau, alive=None):
    dormant = total = 0
    for l, h in enumerate(acts):
        h = np.abs(np.asarray(h, np.float64)).reshape(-1, h.shape[-1]).mean(0)
        a = np.ones(h.size, bool) if alive is None else np.asarray(alive[l])
        score = h / (h[a].mean() + 1e-9)
        dormant += int(((score <= tau) & a).sum())
        total += int(a.sum())
    return dormant / total


def test_dormant_fraction_matches_numpy():
    key = jax.random.PRNGKey(0)
    h1 = jax.nn.relu(jax.random.normal(key, (256, 16)) * jnp.linspace(0, 2, 16))  # unit 0 dead
    h2 = jax.nn.relu(jax.random.normal(jax.random.PRNGKey(1), (256, 5, 5, 8)) - 1.5)  # conv
    for tau in (0.0, 0.025, 0.1, 0.5):
        got = float(sp.dormant_fraction([h1, h2], tau))
        assert np.isclose(got, numpy_dormant([h1, h2], tau), atol=1e-6)
    assert float(sp.dormant_fraction([h1], 0.0)) == 1 / 16  # only the all-zero unit at tau = 0
    alive = [jnp.arange(16) >= 4, jnp.ones(8, bool)]  # 4 units that do not exist
    got = float(sp.dormant_fraction([h1, h2], 0.1, alive))
    assert np.isclose(got, numpy_dormant([h1, h2], 0.1, alive), atol=1e-6)


def test_active_params_and_kernel_sparsity(tiny_mlp):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make("static", 0.9, use_bias=False)
    masks = sp.init_masks(jax.random.PRNGKey(0), spec, hp)
    per_layer, overall = sp.kernel_sparsity(spec, masks)
    k = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    assert int(sp.active_params(masks)) == k.sum()  # no biases
    np.testing.assert_allclose(np.asarray(per_layer), 1 - k / np.array(spec.sizes), atol=1e-7)
    assert abs(float(overall) - 0.9) < 1e-3  # within rounding of the target
    dense = sp.init_masks(jax.random.PRNGKey(0), spec, sp.SparseHParams.make("dense"))
    assert int(sp.active_params(dense)) == spec.num_params
    assert float(sp.kernel_sparsity(spec, dense)[1]) == 0.0
