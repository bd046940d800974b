"""The sparse optimizer as an optax transform: updates that keep masked weights exactly 0, Adam's
step on the kept weights (numpy), composition in optax.chain, vmap over methods, state access."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purejaxsparse import sparse as sp

LR = 0.01
SHAPES = {"a": {"kernel": (16, 64), "bias": (64,)}, "b": {"kernel": (64, 16), "bias": (16,)}}


def tree(key, scale=1.0):
    """A random tree of SHAPES (params or gradients of the 2-layer network)."""
    leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([scale * jax.random.normal(k, s) for k, s in zip(keys, leaves)])


PARAMS = tree(jax.random.PRNGKey(0))
SPEC = sp.SparseSpec.from_params(PARAMS)
MAX_NORM = 0.5
OPTIMIZERS = {  # name: the transform the loop below uses (static: one compiled loop each)
    "adam": lambda lr: sp.sparse(SPEC, optax.adam(lr)),
    "sparse_adam": lambda lr: sp.sparse_adam(SPEC, lr),
    "sgd": lambda lr: sp.sparse(SPEC, optax.identity(), learning_rate=lr),
    "clip": lambda lr: optax.chain(optax.clip_by_global_norm(MAX_NORM), sp.sparse(SPEC, optax.adam(lr))),
}


def gradients(seed, scale=1.0, steps=3):
    return [tree(jax.random.PRNGKey(seed + t), scale) for t in range(steps)]


def hparams(method, **kw):
    return sp.SparseHParams.make(method, kw.pop("sparsity", 0.5), **kw)


def start(tx, hp):
    """(params, state) of one run: init_sparse's masked params and masks in tx's state."""
    params, masks = sp.init_sparse(jax.random.PRNGKey(1), SPEC, PARAMS, hp)
    return params, sp.with_masks(tx.init(params), masks)


@functools.partial(jax.jit, static_argnums=0)
def loop(name, hp, grads, lr=LR):
    """The user's loop, scanned over stacked grads: tx.update, then optax.apply_updates.
    (params, masks, count) at the start and after each step (stacked)."""
    tx = OPTIMIZERS[name](lr)
    params, state = start(tx, hp)

    def step(carry, xs):
        params, state = carry
        g, t = xs
        updates, state = tx.update(g, state, params, key=jax.random.PRNGKey(t), hparams=hp)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, sp.sparse_masks(state), sp.sparse_count(state))

    first = (params, sp.sparse_masks(state), sp.sparse_count(state))
    return first, jax.lax.scan(step, (params, state), (grads, jnp.arange(len(jax.tree.leaves(grads)[0]))))[1]


def train(name, hp, grads):
    """[(params, masks, count)] at the start and after each step, numpy, one run."""
    first, after = loop(name, hp, jax.tree.map(lambda *g: jnp.stack(g), *grads))
    return [first] + [jax.tree.map(lambda x: np.asarray(x)[t], after) for t in range(len(grads))]


GRADS = gradients(10)


def adam_numpy(params, grads, masks, lr=LR, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, Algorithm 1) in float64 on the masked gradients; masked weights 0."""
    p = {k: np.asarray(v, np.float64) for k, v in flat(params).items()}
    mu = {k: np.zeros_like(v) for k, v in p.items()}
    nu = {k: np.zeros_like(v) for k, v in p.items()}
    m = flat(masks)
    for t, g in enumerate(map(flat, grads), start=1):
        for k in p:
            gk = np.where(m[k], np.asarray(g[k], np.float64), 0.0)
            mu[k] = b1 * mu[k] + (1 - b1) * gk
            nu[k] = b2 * nu[k] + (1 - b2) * gk * gk
            step = mu[k] / (1 - b1 ** t) / (np.sqrt(nu[k] / (1 - b2 ** t)) + eps)
            p[k] = np.where(m[k], p[k] - lr * step, 0.0)
    return p


def flat(t):
    """{"a/kernel": array, ...} of a params-like tree (numpy)."""
    return {"/".join(k.key for k in path): np.asarray(v) for path, v in jax.tree_util.tree_flatten_with_path(t)[0]}


@pytest.mark.parametrize("skip", [False, True])
def test_dropped_and_masked_weights_are_exactly_zero_after_apply_updates(skip):
    """RigL changes the mask at t = 0 and t = 2: dropped weights (nonzero before) end exactly 0,
    with or without the gradient step; on a skipped step the kept weights do not move."""
    hp = hparams("rigl", drop_fraction=0.5, update_interval=2, end=100, skip_gradient=skip)
    steps = train("adam", hp, GRADS)
    dropped_any = False
    for (p0, m0, _), (p1, m1, _) in zip(steps, steps[1:]):
        for k, w in flat(p1).items():
            old, new, w0 = flat(m0)[k], flat(m1)[k], flat(p0)[k]
            assert np.all(w[~new] == 0.0) and not np.signbit(w[~new]).any(), k
            dropped = old & ~new
            dropped_any |= bool(np.any(w0[dropped] != 0.0))
            if skip and not np.array_equal(old, new):
                np.testing.assert_array_equal(w[old & new], w0[old & new])
    assert dropped_any
    assert [int(c) for _, _, c in steps] == [0, 1, 2, 3]


def test_dense_run_is_numpy_adam():
    hp = hparams("dense")
    steps = train("sparse_adam", hp, GRADS)
    params, masks, _ = steps[0]
    want = adam_numpy(params, GRADS, masks)
    for k, w in flat(steps[-1][0]).items():
        np.testing.assert_allclose(w, want[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_learning_rate_step_is_bitwise_optax_sgd():
    """With `learning_rate`, the updates leave the params' add fusable with the step size's
    multiply: a dense run around the identity direction is optax.sgd's loop bit for bit (one
    multiply-add where the compiler fuses, as XLA does; rounding the step first differs)."""
    params, _ = sp.init_sparse(jax.random.PRNGKey(1), SPEC, PARAMS, hparams("dense"))
    ours = train("sgd", hparams("dense"), GRADS)[-1][0]

    @jax.jit
    def with_optax_sgd(p, lr):
        sgd = optax.sgd(lr)

        def step(carry, g):
            p, z = carry
            u, z = sgd.update(g, z, p)
            return (optax.apply_updates(p, u), z), None

        return jax.lax.scan(step, (p, sgd.init(p)), jax.tree.map(lambda *g: jnp.stack(g), *GRADS))[0][0]

    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(with_optax_sgd(params, LR))):
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


def test_static_mask_kept_weights_follow_numpy_adam():
    hp = hparams("static", sparsity=0.6)
    steps = train("adam", hp, GRADS)
    params, masks, _ = steps[0]
    want = adam_numpy(params, GRADS, masks)
    for k, w in flat(steps[-1][0]).items():
        np.testing.assert_allclose(w, want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert any(not m.all() for m in flat(masks).values())


def test_composes_after_clip_by_global_norm_in_a_chain():
    """chain(clip, sparse(adam)): the clip sees the dense gradients; numpy clips them by hand,
    then takes Adam's masked step. with_masks, sparse_masks and sparse_count reach into the chain."""
    grads = gradients(20, scale=3.0)
    hp = hparams("static", sparsity=0.6)
    steps = train("clip", hp, grads)
    params, masks, _ = steps[0]
    clipped = []
    for g in grads:
        norm = np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(g)))
        assert norm > MAX_NORM  # the clip acts
        clipped.append(jax.tree.map(lambda x: np.asarray(x, np.float64) * MAX_NORM / norm, g))
    want = adam_numpy(params, clipped, masks)
    for k, w in flat(steps[-1][0]).items():
        np.testing.assert_allclose(w, want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    _, init_masks = sp.init_sparse(jax.random.PRNGKey(1), SPEC, PARAMS, hp)
    for a, b in zip(jax.tree.leaves(steps[-1][1]), jax.tree.leaves(init_masks)):
        np.testing.assert_array_equal(a, b)
    assert int(steps[-1][2]) == 3


def test_vmap_over_methods_is_each_run_alone():
    """static and RigL (skip_gradient, so the skipped step is per run) in one vmapped program."""
    hp = jax.vmap(lambda m: sp.SparseHParams.make(m, 0.5, drop_fraction=0.5, update_interval=2, end=100,
                                                  skip_gradient=True))(
        jnp.asarray([sp.method_id("static"), sp.method_id("rigl")]))
    grads = jax.tree.map(lambda *g: jnp.stack(g), *GRADS)
    batched = jax.jit(jax.vmap(lambda h: loop("adam", h, grads)[1]))(hp)
    for r in range(2):  # masks and counts exactly; params up to the compiler's rounding under vmap
        alone = loop("adam", jax.tree.map(lambda x: x[r], hp), grads)[1]
        for a, b in zip(jax.tree.leaves(batched[1:]), jax.tree.leaves(alone[1:])):
            np.testing.assert_array_equal(np.asarray(a)[r], np.asarray(b))
        for a, b in zip(jax.tree.leaves(batched[0]), jax.tree.leaves(alone[0])):
            np.testing.assert_allclose(np.asarray(a)[r], np.asarray(b), rtol=1e-6, atol=1e-7)
            assert np.array_equal(np.asarray(a)[r] == 0.0, np.asarray(b) == 0.0)
    static_masks, rigl_masks = (jax.tree.map(lambda x: np.asarray(x)[r], batched[1]) for r in range(2))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(static_masks), jax.tree.leaves(rigl_masks)))


def test_state_access_in_plain_and_chained_states():
    hp = hparams("static")
    _, masks = sp.init_sparse(jax.random.PRNGKey(1), SPEC, PARAMS, hp)
    plain = sp.sparse(SPEC, optax.adam(LR))
    chained = optax.chain(optax.clip_by_global_norm(1.0), plain, optax.scale(1.0))
    for tx in (plain, chained):
        fresh = tx.init(PARAMS)
        assert all(np.all(m) for m in jax.tree.leaves(sp.sparse_masks(fresh)))  # all on by default
        state = sp.with_masks(fresh, masks)
        assert jax.tree.structure(state) == jax.tree.structure(fresh)
        for a, b in zip(jax.tree.leaves(sp.sparse_masks(state)), jax.tree.leaves(masks)):
            np.testing.assert_array_equal(a, b)
        assert int(sp.sparse_count(state)) == 0
    with pytest.raises(ValueError, match="no SparseState"):
        sp.sparse_masks(optax.adam(LR).init(PARAMS))
