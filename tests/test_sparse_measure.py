"""Measurements: active counts, actual sparsity, dormant fraction against plain numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def test_active_params(tiny_mlp):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make("static", 0.9, use_bias=False)
    masks = sp.init_masks(jax.random.PRNGKey(0), spec, hp)
    k = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    assert int(sp.active_params(masks)) == k.sum()  # no biases
    kernels = [np.asarray(m) for m in spec.kernel_leaves(masks)]
    assert abs(1 - sum(m.sum() for m in kernels) / sum(m.size for m in kernels) - 0.9) < 1e-3  # the target
    dense = sp.init_masks(jax.random.PRNGKey(0), spec, sp.SparseHParams.make("dense"))
    assert int(sp.active_params(dense)) == spec.num_params


def test_gradient_snr_hand_worked_with_masked_entries():
    """Two leaves, 2 samples. Kernel [2]: entry 0 grads (1, 3): mean 2, population std 1, SNR 2;
    entry 1 (masked) grads (2, 2): std 0, SNR 2 / 1e-10 capped by nothing -> huge, so it must
    be left out of the active mean; bias [1]: grads (-1, 1): mean 0, SNR 0."""
    g = {"k": jnp.array([[1.0, 2.0], [3.0, 2.0]]), "b": jnp.array([[-1.0], [1.0]])}
    active = {"k": jnp.array([True, False]), "b": jnp.array([True])}
    assert float(sp.gradient_snr(g, active)) == pytest.approx((2.0 + 0.0) / 2, rel=1e-6)
    # the original's definition: every entry of the variables, masked ones included
    everything = {"k": jnp.array([True, True]), "b": jnp.array([True])}
    assert float(sp.gradient_snr(g, everything)) == pytest.approx((2.0 + 2.0 / 1e-10 + 0.0) / 3, rel=1e-5)
    # sample weights: a weight-0 sample is ignored
    g2 = {"k": jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 2.0]]), "b": jnp.array([[-1.0], [1.0], [7.0]])}
    w = jnp.array([1.0, 1.0, 0.0])
    # entry 0: (1, 3) -> 2; bias: (-1, 1) -> 0
    assert float(sp.gradient_snr(g2, active, w)) == pytest.approx(1.0, rel=1e-6)


def test_existing_entries_are_the_original_variables():
    """Sparse kernels count every entry (masks act on dense variables); param-matched dense
    only the units its narrower network has; biases as masked."""
    from purejaxsparse.nets import MLP
    net = MLP(hidden=(8, 8), out_dim=2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    spec = sp.SparseSpec.from_params(params)
    for method, use_bias in (("rigl", True), ("static", False), ("dense_width", True)):
        hp = sp.SparseHParams.make(method, 0.8, use_bias=use_bias)
        masks = sp.init_masks(jax.random.PRNGKey(1), spec, hp)
        exists = sp.existing_entries(spec, hp, masks)
        for path, m in jax.tree_util.tree_leaves_with_path(exists):
            name = jax.tree_util.keystr(path)
            mask = np.asarray(masks["params"][name.split("'")[3]][name.split("'")[5]])
            if "kernel" in name and method != "dense_width":
                assert np.asarray(m).all()
            else:
                np.testing.assert_array_equal(np.asarray(m), mask)
