"""Masks: exact counts under a vmapped sweep of seeds x sparsities x methods, seeds differ,
param-matched width, bias on/off, ranking with ties, spec ordering."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxsparse import sparse as sp
from purejaxsparse.nets import MLP

METHODS = sp.METHODS
SEEDS, SPARSITIES = (0, 1, 2), (0.5, 0.8, 0.95)


def sweep_hparams(**extra):
    combos = list(itertools.product(SEEDS, SPARSITIES, range(len(METHODS))))
    hp = jax.vmap(lambda s, m: sp.SparseHParams.make(method=m, sparsity=s, **extra))(
        jnp.asarray([c[1] for c in combos]), jnp.asarray([c[2] for c in combos]))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([c[0] for c in combos]))
    return combos, keys, hp


def expected_counts(spec, method, s):
    sizes = np.array(spec.sizes)
    if method in ("dense", "prune"):
        return sizes
    if method == "dense_width":
        return None  # checked separately
    return np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, s, "erk")))


@pytest.fixture(scope="module")
def sweep(tiny_mlp):
    """One vmapped init of every (seed, sparsity, method) combination."""
    _, params, spec = tiny_mlp
    combos, keys, hp = sweep_hparams()
    new_params, masks = jax.jit(jax.vmap(lambda k, h: sp.init_sparse(k, spec, params, h)))(keys, hp)
    return combos, new_params, masks


def test_exact_counts_in_vmapped_sweep(tiny_mlp, sweep):
    _, _, spec = tiny_mlp
    combos, new_params, masks = sweep
    kmasks = [np.asarray(m) for m in spec.kernel_leaves(masks)]
    kparams = [np.asarray(p) for p in spec.kernel_leaves(new_params)]
    for r, (seed, s, m) in enumerate(combos):
        counts = np.array([km[r].sum() for km in kmasks])
        want = expected_counts(spec, METHODS[m], s)
        if want is not None:
            np.testing.assert_array_equal(counts, want, err_msg=f"run {r}: {METHODS[m]} s={s}")
        for km, kp in zip(kmasks, kparams):  # masked weights are exactly zero
            assert np.all(kp[r][~km[r]] == 0.0)


def test_no_two_seeds_share_a_mask(tiny_mlp, sweep):
    _, _, spec = tiny_mlp
    combos, _, masks = sweep
    hidden = np.asarray(spec.kernel_leaves(masks)[1])
    for s, m in itertools.product(SPARSITIES, ("static", "set", "rigl")):
        runs = [r for r, c in enumerate(combos) if c[1] == s and METHODS[c[2]] == m]
        pats = {hidden[r].tobytes() for r in runs}
        assert len(pats) == len(runs), f"{m} at {s}: seeds share a mask"


def test_start_after_zero_means_dense_until_cut(tiny_mlp):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make("rigl", 0.9, start=100, start_mode="dense_then_cut")
    _, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    assert all(bool(m.all()) for m in spec.kernel_leaves(masks))


def test_top_k_mask_exact_and_ties_by_index():
    score = jnp.array([3.0, 1.0, 1.0, 1.0, 5.0, jnp.nan])
    for k in range(7):
        assert int(sp.top_k_mask(score, k).sum()) == k
    np.testing.assert_array_equal(sp.top_k_mask(score, 3), [True, True, False, False, True, False])
    traced = jax.jit(jax.vmap(lambda k: sp.top_k_mask(score, k)))(jnp.arange(7))
    assert np.asarray(traced).sum(axis=1).tolist() == list(range(7))


def test_dense_width_masks_whole_units_and_matches_budget():
    net = MLP(hidden=(64, 64), out_dim=2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    spec = sp.SparseSpec.from_params(params)
    n_kernels, n_biases = 4 * 64 + 64 * 64 + 64 * 2, 64 + 64 + 2
    for s in (0.5, 0.8, 0.9, 0.98):
        for use_bias in (True, False):
            hp = sp.SparseHParams.make("dense_width", s, use_bias=use_bias)
            p, masks = sp.init_sparse(jax.random.PRNGKey(1), spec, params, hp)
            k0, k1, k2 = [np.asarray(m) for m in spec.kernel_leaves(masks)]
            u = int(k0[0].sum())  # units kept in hidden layer 1
            assert k0[:, :u].all() and not k0[:, u:].any()
            assert k1[:u, :u].all() and not k1[u:].any() and not k1[:, u:].any()
            assert k2[:u].all() and not k2[u:].any()

            # the original counts biases on both sides (get_total_params: mask sum + bias size)
            def count(v):
                return 4 * v + v * v + v * 2 + (v + v + 2 if use_bias else 0)
            budget = (1 - s) * n_kernels + (n_biases if use_bias else 0)
            assert count(u) <= budget < count(u + 1)  # largest width that fits
            b0 = np.asarray(masks["params"]["layer_0"]["bias"])
            assert b0[:u].all() == use_bias and not b0[u:].any()
            # the removed units are counted as missing, not as dormant
            units = sp.hidden_unit_masks(spec, hp)
            assert int(units[0].sum()) == u
    # worked by hand at 90%: budget 448 + 130 = 578; u^2 + 8u + 2 is 562 at u = 20, 611 at 21.
    # Kernels only (use_bias off): u^2 + 6u <= 448 gives 18.
    for use_bias, want in ((True, 20), (False, 18)):
        hp = sp.SparseHParams.make("dense_width", 0.9, use_bias=use_bias)
        assert int(sp.hidden_unit_masks(spec, hp)[0].sum()) == want


def test_dense_width_on_cnn_follows_flatten():
    from purejaxsparse.nets import NatureCNN
    net = NatureCNN(out_dim=4)
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0), jnp.zeros((1, 36, 36, 2), jnp.uint8))
    spec = sp.SparseSpec.from_params(params)
    hp = sp.SparseHParams.make("dense_width", 0.8)
    masks = sp.init_masks(jax.random.PRNGKey(0), spec, hp)
    fc = np.asarray(spec.kernel_leaves(masks)[3])  # (H*W*64, 512)
    conv3 = np.asarray(spec.kernel_leaves(masks)[2])
    kept_channels = conv3[0, 0, 0]  # channels of layer 2 that exist
    rep = spec.in_repeat[3]
    assert rep * 64 == fc.shape[0]
    assert 0 < kept_channels.sum() < 64
    rows_alive = fc.any(axis=1)
    np.testing.assert_array_equal(rows_alive, np.tile(kept_channels, rep))
    total = sum(int(m.sum()) for m in spec.kernel_leaves(masks))
    biases = sum(int(np.asarray(m).sum()) for m in jax.tree.leaves(masks) if np.asarray(m).ndim == 1)
    budget = 0.2 * spec.num_kernel_params + sum(s[-1] for s in spec.shapes)
    assert 0.9 * budget < total + biases <= budget  # nearly all the budget used, none exceeded


@pytest.mark.parametrize("use_bias", [True, False])
def test_bias_flag_is_a_mask(tiny_mlp, use_bias):
    _, params, spec = tiny_mlp
    params = jax.tree.map(lambda x: x + 1.0, params)
    hp = sp.SparseHParams.make("rigl", 0.9, use_bias=use_bias)
    p, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    for layer in ("layer_0", "layer_1", "layer_2"):
        b = np.asarray(p["params"][layer]["bias"])
        assert np.all(np.asarray(masks["params"][layer]["bias"]) == use_bias)
        assert np.all((b != 0) == use_bias)


def test_spec_orders_layers_naturally_and_rejects_no_kernels():
    params = {f"layer_{i}": {"kernel": jnp.zeros((3, 3)), "bias": jnp.zeros(3)} for i in (0, 1, 2, 10)}
    params["log_std"] = jnp.zeros(3)
    spec = sp.SparseSpec.from_params(params)
    assert [n.split("/")[0] for n in spec.names] == ["layer_0", "layer_1", "layer_2", "layer_10"]
    assert spec.kinds.count("other") == 1
    masks = sp.init_masks(jax.random.PRNGKey(0), spec, sp.SparseHParams.make("set", 0.5))
    assert bool(masks["log_std"].all())  # never sparsified
    assert jax.tree.structure(masks) == jax.tree.structure(params)
    with pytest.raises(ValueError, match="no 'kernel'"):
        sp.SparseSpec.from_params({"w": jnp.zeros((3, 3))})
    with pytest.raises(ValueError, match="method: got 'lottery'; allowed: one of dense, "):
        sp.SparseHParams.make("lottery")


def test_make_takes_its_defaults_from_the_declarations():
    """A default exists once: make() without arguments is the declared defaults, written out
    here by hand; positional arguments follow the field order."""
    from purejaxsparse.fields import describe
    assert describe(sp.SparseHParams.make()) == {
        "method": "dense", "sparsity": 0.9, "distribution": "erk", "drop_fraction": 0.5, "update_interval": 1000,
        "start": 0, "end": 75_000, "sparse_init": True, "use_bias": True, "start_mode": "delay_updates",
        "skip_gradient": False}
    hp = sp.SparseHParams.make("RigL", 0.8, "uniform", end=10)
    assert describe(hp)["method"] == "rigl" and describe(hp)["distribution"] == "uniform"
    assert float(hp.sparsity) == np.float32(0.8) and int(hp.end) == 10
    for bad, message in (((), {"sparsity_": 1}), (("rigl",), {"method": "set"})):
        with pytest.raises(TypeError, match="unexpected|multiple"):
            sp.SparseHParams.make(*bad, **message)
