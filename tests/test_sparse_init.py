"""Mask-aware initialisation against an independent per-weight computation of the fans."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import sparse as sp


def loop_fans(mask):
    """fan_in of output unit j and fan_out of input unit i, counted with plain loops."""
    m = np.asarray(mask).reshape(-1, *mask.shape[-2:])
    n_in, n_out = m.shape[1:]
    fan_in = np.array([m[:, :, j].sum() for j in range(n_out)], float)
    fan_out = np.array([m[:, i, :].sum() for i in range(n_in)], float)
    return fan_in, fan_out


@pytest.mark.parametrize("shape", [(20, 30), (3, 3, 4, 8)])
def test_masked_fans_match_loops(shape):
    mask = jax.random.uniform(jax.random.PRNGKey(0), shape) < 0.3
    fan_in, fan_out = sp.masked_fans(mask)
    want_in, want_out = loop_fans(mask)
    np.testing.assert_array_equal(np.asarray(fan_in), want_in)
    np.testing.assert_array_equal(np.asarray(fan_out), want_out)


def test_sparsity_aware_init_bounds_and_variance():
    """Every active weight lies in +-sqrt(3 / max(1, fan_avg)) and fills that range."""
    shape = (256, 256)
    mask = jax.random.uniform(jax.random.PRNGKey(1), shape) < 0.1
    w = np.asarray(sp.variance_scaling(jax.random.PRNGKey(2), mask, sp.SPARSITY_AWARE))
    fan_in, fan_out = loop_fans(mask)
    limit = np.sqrt(3.0 / np.maximum(1.0, 0.5 * (fan_in[None, :] + fan_out[:, None])))
    active = np.asarray(mask)
    ratio = w[active] / limit[active]
    assert np.all(np.abs(ratio) <= 1.0)
    assert abs(ratio.var() - 1 / 3) < 0.02  # U(-1, 1) has variance 1/3


def test_full_mask_is_the_ordinary_initialiser():
    """With no mask the init is flax's variance scaling (same formula, dense fans)."""
    import flax.linen as nn
    shape = (400, 300)
    ones = jnp.ones(shape, bool)
    for spec, flax_init in [
        (sp.GLOROT_UNIFORM, nn.initializers.glorot_uniform()),
        (sp.HE_TRUNCATED_NORMAL, nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")),
    ]:
        ours = np.asarray(sp.variance_scaling(jax.random.PRNGKey(0), ones, spec))
        theirs = np.asarray(flax_init(jax.random.PRNGKey(1), shape))
        assert abs(ours.std() / theirs.std() - 1) < 0.02
        assert abs(np.abs(ours).max() / np.abs(theirs).max() - 1) < 0.05


def test_method_decides_the_init(tiny_mlp):
    _, params, spec = tiny_mlp
    hidden = lambda p: np.asarray(p["params"]["layer_1"]["kernel"])
    key = jax.random.PRNGKey(3)
    # static with sparse_init: per-weight bound from masked fans
    hp = sp.SparseHParams.make("static", 0.9, sparse_init=True)
    p, masks = sp.init_sparse(key, spec, params, hp)
    m = np.asarray(masks["params"]["layer_1"]["kernel"])
    fan_in, fan_out = loop_fans(m)
    limit = np.sqrt(3.0 / np.maximum(1.0, 0.5 * (fan_in[None, :] + fan_out[:, None])))
    assert np.all(np.abs(hidden(p)) <= limit + 1e-7)
    assert np.abs(hidden(p)[m]).max() > np.sqrt(3.0 / 32)  # wider than the dense glorot bound
    # static without sparse_init: the dense init (glorot bound on full fans), masked
    hp_off = sp.SparseHParams.make("static", 0.9, sparse_init=False)
    p_off, _ = sp.init_sparse(key, spec, params, hp_off)
    assert np.abs(hidden(p_off)).max() <= np.sqrt(3.0 / 32) + 1e-7
    # dense_width: the narrower network's own init (glorot on the kept units' fans)
    hp_w = sp.SparseHParams.make("dense_width", 0.75)
    p_w, masks_w = sp.init_sparse(key, spec, params, hp_w)
    u = int(np.asarray(masks_w["params"]["layer_0"]["kernel"])[0].sum())
    assert u < 32
    assert np.abs(hidden(p_w)).max() <= np.sqrt(3.0 / u) + 1e-7
    assert np.abs(hidden(p_w)).max() > np.sqrt(3.0 / 32)
    for pp, mm in [(p, masks), (p_off, masks), (p_w, masks_w)]:
        for leaf, mk in zip(jax.tree.leaves(pp), jax.tree.leaves(mm)):
            assert np.all(np.asarray(leaf)[~np.asarray(mk)] == 0)
