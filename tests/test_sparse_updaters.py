"""Mask updates: exact drop/grow sets, grown weights and moments, pruning schedule, masked steps
(through the sparse optimizer, as a training loop runs them)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purejaxsparse import sparse as sp

TX = optax.chain(optax.add_decayed_weights(1e-2), optax.adam(1e-2))
maybe_update = jax.jit(sp.maybe_update_masks, static_argnames="spec")


def random_like(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


def train_loop(spec, hp, params, masks, steps, key):
    """`steps` sparse-optimizer steps (around TX) on random gradients, each preceded by the
    scheduled mask update at t = steps done (as the agents and rigl's train steps do); returns
    (params, TX's state, masks, counts), counts[t]: active kernel weights per layer after the
    update at t."""
    tx = sp.sparse(spec, TX)

    def body(carry, t):
        params, state = carry
        k = jax.random.fold_in(key, t)
        updates, state = tx.update(random_like(k, params), state, params, key=k, hparams=hp)
        counts = jnp.stack([m.sum() for m in spec.kernel_leaves(sp.sparse_masks(state))])
        return (optax.apply_updates(params, updates), state), counts

    state = sp.with_masks(tx.init(params), masks)
    (params, state), counts = jax.lax.scan(body, (params, state), jnp.arange(steps))
    return params, state.inner_state, state.masks, counts


def numpy_drop_grow(mask, w, score, n_drop):
    """Independent drop/grow: keep the largest |w| of the active ones (ties: lower index),
    grow the n_drop highest scores among the rest (ties: lower index)."""
    mask, w, score = (np.asarray(x).ravel() for x in (mask, w, score))
    active = np.flatnonzero(mask)
    order = sorted(active, key=lambda i: (-abs(w[i]), i))
    keep = np.zeros_like(mask)
    keep[order[: len(active) - n_drop]] = True
    rest = sorted(np.flatnonzero(~keep), key=lambda i: (-score[i], i))
    grow = np.zeros_like(mask)
    grow[rest[:n_drop]] = True
    return keep | grow, keep


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_drop_and_grow_sets_are_exact(tiny_mlp, method):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make(method, 0.8, drop_fraction=0.3, update_interval=10, end=100)
    key = jax.random.PRNGKey(0)
    params, masks = sp.init_sparse(key, spec, params, hp)
    grads = random_like(jax.random.PRNGKey(1), params)
    step = 10
    new = sp.update_masks(jax.random.PRNGKey(2), spec, hp, step, masks, params, grads)
    f = 0.3 / 2 * (1 + np.cos(np.pi * step / 100))
    for l, (m, w, g, nm) in enumerate(zip(*(spec.kernel_leaves(t) for t in (masks, params, grads, new)))):
        nnz = int(np.asarray(m).sum())
        n_drop = int(np.floor(np.float32(f) * nnz))
        assert int(np.asarray(nm).sum()) == nnz
        if method == "rigl":
            want, _ = numpy_drop_grow(m, w, np.abs(np.asarray(g)), n_drop)
            np.testing.assert_array_equal(np.asarray(nm).ravel(), want, err_msg=f"layer {l}")
        else:
            _, keep = numpy_drop_grow(m, w, np.zeros(np.asarray(m).size), n_drop)
            nm = np.asarray(nm).ravel()
            assert np.all(nm[keep])  # everything kept survives; the rest is random regrowth
            assert int((nm & ~keep).sum()) == n_drop


def test_grown_weights_start_at_zero_with_reset_moments(tiny_mlp):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make("rigl", 0.8, drop_fraction=0.5, update_interval=5, end=1000)
    params, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    # 5 optimizer steps (moments become nonzero), then t = 5 triggers an update
    p5, opt5, m5, _ = jax.jit(lambda p, m: train_loop(spec, hp, p, m, 5, jax.random.PRNGKey(1)))(params, masks)
    grads = random_like(jax.random.PRNGKey(9), p5)
    p6, opt6, m6 = maybe_update(jax.random.PRNGKey(3), spec, hp, 5, p5, opt5, m5, grads)
    new_conn = sp.grown(m5, m6)
    n_grown = sum(int(x.sum()) for x in jax.tree.leaves(new_conn))
    assert n_grown > 0
    adam = opt6[1][0]
    for p, mu, nu, g, m in zip(*(jax.tree.leaves(t) for t in (p6, adam.mu, adam.nu, new_conn, m6))):
        p, mu, nu, g, m = map(np.asarray, (p, mu, nu, g, m))
        assert np.all(p[g] == 0) and np.all(mu[g] == 0) and np.all(nu[g] == 0)
        assert np.all(p[~m] == 0) and np.all(mu[~m] == 0) and np.all(nu[~m] == 0)
    # surviving weights kept their moments
    old_mu = jax.tree.leaves(opt5[1][0].mu)
    kept = [np.asarray(m) & ~np.asarray(g) for m, g in zip(jax.tree.leaves(m6), jax.tree.leaves(new_conn))]
    for a, b, k in zip(old_mu, jax.tree.leaves(adam.mu), kept):
        np.testing.assert_array_equal(np.asarray(a)[k], np.asarray(b)[k])


def test_prune_follows_polynomial_and_freezes_after_end(tiny_mlp):
    _, params, spec = tiny_mlp
    start, end, interval, sf = 10, 50, 5, 0.9
    hp = sp.SparseHParams.make("prune", sf, start=start, end=end, update_interval=interval)
    params, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    steps = 70
    _, _, masks, counts = jax.jit(lambda p, m: train_loop(spec, hp, p, m, steps, jax.random.PRNGKey(1)))(params, masks)
    counts = np.asarray(counts)  # [steps, L], after the update at t = 0..steps-1
    final = np.asarray(sp.layer_sparsities(spec.shapes, sf, "erk"), np.float32)
    sizes = np.array(spec.sizes, np.float32)
    expected = sizes.copy()
    for t in range(steps):
        if start < t <= end and ((t - start) % interval == 0 or t == end):
            p = np.float32(min(max((t - start) / (end - start), 0), 1))
            s_t = final * np.float32(1 - (1 - p) ** 3)
            expected = np.round((np.float32(1) - s_t) * sizes).astype(np.int64)
        np.testing.assert_array_equal(counts[t], expected, err_msg=f"step {t}")
    assert np.all(counts[end:] == counts[end])  # frozen after end
    np.testing.assert_array_equal(counts[-1], np.asarray(sp.active_counts(spec.shapes, final)))


@pytest.mark.parametrize("method", ["static", "rigl"])
def test_cut_at_start_is_by_magnitude(tiny_mlp, method):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make(method, 0.9, start=8, end=100, update_interval=4, start_mode="dense_then_cut")
    params, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    p8, opt8, m7, counts = jax.jit(lambda p, m: train_loop(spec, hp, p, m, 8, jax.random.PRNGKey(1)))(params, masks)
    assert np.all(np.asarray(counts) == np.array(spec.sizes))  # dense through the first 8 steps
    grads = random_like(jax.random.PRNGKey(2), p8)
    _, _, m8 = maybe_update(jax.random.PRNGKey(3), spec, hp, 8, p8, opt8, m7, grads)
    want_counts = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    for l, (w, m) in enumerate(zip(spec.kernel_leaves(p8), spec.kernel_leaves(m8))):
        w, m = np.abs(np.asarray(w)).ravel(), np.asarray(m).ravel()
        assert m.sum() == want_counts[l]
        if 0 < m.sum() < m.size:
            assert w[m].min() >= w[~m].max()


@pytest.mark.parametrize("method", ["static", "set", "rigl"])
def test_delay_updates_is_sparse_from_init_and_changes_from_start(tiny_mlp, method):
    """JaxPruner's reading of `start` (Ganaie et al.): the random sparse mask exists from
    initialisation, and SET/RigL first change it at t == start."""
    _, params, spec = tiny_mlp
    start = 8
    hp = sp.SparseHParams.make(method, 0.9, start=start, end=100, update_interval=4, drop_fraction=0.5)
    p0, m0 = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    want_counts = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    np.testing.assert_array_equal([int(np.asarray(m).sum()) for m in spec.kernel_leaves(m0)], want_counts)

    def masks_after(steps):
        return jax.jit(lambda p, m: train_loop(spec, hp, p, m, steps, jax.random.PRNGKey(1)))(p0, m0)[2]

    before, at = masks_after(start), masks_after(start + 1)  # updates at t <= 7, then t <= 8
    hidden = lambda m: np.asarray(spec.kernel_leaves(m)[1])  # noqa: E731
    np.testing.assert_array_equal(hidden(before), hidden(m0))  # no change before start
    assert np.array_equal(hidden(at), hidden(m0)) == (method == "static")


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_masks_change_at_step_zero_with_the_full_drop_fraction(tiny_mlp, method):
    """rigl's schedule updates SET/RigL masks at train step 0, before any training, with the
    cosine drop fraction at 0, i.e. f0 itself."""
    _, params, spec = tiny_mlp
    f0 = 0.5
    hp = sp.SparseHParams.make(method, 0.8, drop_fraction=f0, update_interval=1000, end=75_000)
    params, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    grads = random_like(jax.random.PRNGKey(1), params)
    _, _, new = maybe_update(jax.random.PRNGKey(2), spec, hp, 0, params, TX.init(params), masks, grads)
    for l, (m, w, g, nm) in enumerate(zip(*(spec.kernel_leaves(t) for t in (masks, params, grads, new)))):
        nnz = int(np.asarray(m).sum())
        n_drop = int(np.floor(np.float32(f0) * nnz))
        _, keep = numpy_drop_grow(m, w, np.abs(np.asarray(g)), n_drop)
        nm = np.asarray(nm).ravel()
        if method == "rigl":
            want, _ = numpy_drop_grow(m, w, np.abs(np.asarray(g)), n_drop)
            np.testing.assert_array_equal(nm, want, err_msg=f"layer {l}")
        assert np.all(nm[keep]) and int((nm & ~keep).sum()) == n_drop
        if n_drop and np.asarray(m).sum() < np.asarray(m).size:
            assert not np.array_equal(nm, np.asarray(m).ravel())


def test_masked_weights_stay_zero_through_adam_and_weight_decay(tiny_mlp):
    _, params, spec = tiny_mlp
    hp = sp.SparseHParams.make("static", 0.9)
    p0, masks = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
    p, opt, m, _ = jax.jit(lambda p, m: train_loop(spec, hp, p, m, 300, jax.random.PRNGKey(1)))(p0, masks)
    for w, w0, mk in zip(jax.tree.leaves(p), jax.tree.leaves(p0), jax.tree.leaves(m)):
        w, w0, mk = map(np.asarray, (w, w0, mk))
        assert np.all(w[~mk] == 0.0)
        assert np.mean(w[mk] != w0[mk]) > 0.99  # the active ones did train
    for mu, mk in zip(jax.tree.leaves(opt[1][0].mu), jax.tree.leaves(m)):
        assert np.all(np.asarray(mu)[~np.asarray(mk)] == 0.0)


def test_vmapped_mixed_methods_keep_exact_counts(tiny_mlp):
    """Seeds x sparsities x methods in one vmapped scan of updates every 3 steps."""
    _, params, spec = tiny_mlp
    combos = list(itertools.product((0, 1), (0.5, 0.9), range(len(sp.METHODS))))
    hp = jax.vmap(lambda s, m: sp.SparseHParams.make(m, s, drop_fraction=0.5, update_interval=3,
                                                      start=0, end=30))(
        jnp.asarray([c[1] for c in combos]), jnp.asarray([c[2] for c in combos]))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([c[0] for c in combos]))

    def one(key, hp):
        p, m = sp.init_sparse(key, spec, params, hp)
        _, _, m, counts = train_loop(spec, hp, p, m, 20, key)
        return m, counts

    masks, counts = jax.jit(jax.vmap(one))(keys, hp)
    # cond_any under vmap (branch if any run updates, select per run) == each run on its own
    one_jit = jax.jit(one)
    for r in (1, 4, 9, 16):
        alone, _ = one_jit(keys[r], jax.tree.map(lambda x: x[r], hp))
        for a, b in zip(jax.tree.leaves(masks), jax.tree.leaves(alone)):
            np.testing.assert_array_equal(np.asarray(a)[r], np.asarray(b))
    counts = np.asarray(counts)
    sizes = np.array(spec.sizes)
    hidden = [np.asarray(x) for x in spec.kernel_leaves(masks)]
    for r, (seed, s, m) in enumerate(combos):
        name = sp.METHODS[m]
        k = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, s)))
        if name == "dense":
            assert np.all(counts[r] == sizes)
        elif name in ("static", "set", "rigl"):
            assert np.all(counts[r] == k), (name, s)
        elif name == "dense_width":
            assert np.all(counts[r] == counts[r][0])  # fixed mask
    # SET/RigL masks moved, static did not: compare against the run's initial mask
    init_masks = jax.vmap(lambda k, h: sp.init_sparse(k, spec, params, h)[1])(keys, hp)
    init_hidden = np.asarray(spec.kernel_leaves(init_masks)[1])
    for r, (seed, s, m) in enumerate(combos):
        moved = not np.array_equal(hidden[1][r], init_hidden[r])
        assert moved == (sp.METHODS[m] in ("set", "rigl", "prune")), (sp.METHODS[m], s)


def adam_numpy(w, g, mu, nu, count, lr, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step by its formula (Kingma & Ba, Algorithm 1) in numpy: (w, mu, nu)."""
    mu, nu = b1 * mu + (1 - b1) * g, b2 * nu + (1 - b2) * g * g
    mhat, vhat = mu / (1 - b1 ** (count + 1)), nu / (1 - b2 ** (count + 1))
    return w - lr * mhat / (np.sqrt(vhat) + eps), mu, nu


def test_mask_update_step_applies_or_skips_the_gradient_as_worked_by_hand():
    """RigL with its first topology update at t = 1: t = 0 is a plain Adam step, t = 1 changes
    the mask. skip_gradient=False (rigl's TF-Agents trainers): the gradient is then applied
    under the new mask, grown weights starting from 0 with zero moments. True (rigl's RigL
    optimizer, JaxPruner): nothing moves but the mask: kept weights and their moments are as
    after t = 0, grown and dropped weights are exactly 0, Adam's count stays at 1."""
    lr = 0.1
    params = {"a": {"kernel": jnp.zeros((6, 5)), "bias": jnp.zeros(5)},
              "b": {"kernel": jnp.zeros((5, 4)), "bias": jnp.zeros(4)}}
    spec = sp.SparseSpec.from_params(params)
    tx = sp.sparse(spec, optax.adam(lr))
    g0, g1 = random_like(jax.random.PRNGKey(1), params), random_like(jax.random.PRNGKey(2), params)

    def two_steps(skip):
        hp = sp.SparseHParams.make("rigl", 0.6, drop_fraction=0.5, update_interval=10, start=1, end=100,
                                   skip_gradient=skip)
        p, m = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
        state, out = sp.with_masks(tx.init(p), m), []
        for k, g in ((3, g0), (4, g1)):
            updates, state = tx.update(g, state, p, key=jax.random.PRNGKey(k), hparams=hp)
            p = optax.apply_updates(p, updates)
            out.append((p, state.inner_state, state.masks))
        return m, *out

    step = jax.jit(two_steps, static_argnums=0)
    m0, (p1, opt1, m1), (p2, opt2, m2) = step(False)
    _, (q1, qopt1, _), (q2, qopt2, n2) = step(True)
    for a, b in zip(jax.tree.leaves(m0), jax.tree.leaves(m1)):
        np.testing.assert_array_equal(a, b)  # no mask change at t = 0
    for a, b in zip(jax.tree.leaves((p1, m2)), jax.tree.leaves((q1, n2))):
        np.testing.assert_array_equal(a, b)  # same t = 0 step, same new mask either way
    assert int(opt2[0].count) == 2 and int(qopt2[0].count) == 1

    for path, w1 in jax.tree_util.tree_flatten_with_path(p1)[0]:
        at = lambda tree: np.asarray(functools.reduce(lambda t, k: t[k.key], path, tree))  # noqa: E731
        old, new = at(m1), at(m2)
        kept, grown = old & new, new & ~old
        mu1, nu1 = at(opt1[0].mu), at(opt1[0].nu)
        assert grown.any() == path[-1].key.endswith("kernel") == (old & ~new).any()
        # applied: Adam at count 1 on kept entries, from zero moments at grown ones, 0 elsewhere
        want, _, _ = adam_numpy(np.where(kept, w1, 0.0), np.where(new, at(g1), 0.0),
                                np.where(kept, mu1, 0.0), np.where(kept, nu1, 0.0), 1, lr)
        np.testing.assert_allclose(at(p2), np.where(new, want, 0.0), rtol=1e-5, atol=1e-7)
        assert np.all(at(p2)[grown] != 0.0)
        # skipped: kept weights and moments as after t = 0, everything else exactly 0
        np.testing.assert_array_equal(at(q2), np.where(kept, w1, 0.0))
        np.testing.assert_array_equal(at(qopt2[0].mu), np.where(kept, mu1, 0.0))
        np.testing.assert_array_equal(at(qopt2[0].nu), np.where(kept, nu1, 0.0))


def test_skip_gradient_is_per_run_under_vmap(tiny_mlp):
    """One vmapped program with both settings gives each run what it gives alone."""
    _, params, spec = tiny_mlp
    hp = jax.vmap(lambda skip: sp.SparseHParams.make("rigl", 0.8, update_interval=2, end=10, skip_gradient=skip))(
        jnp.asarray([False, True]))

    tx = sp.sparse(spec, TX)

    def run(hp):
        p, m = sp.init_sparse(jax.random.PRNGKey(0), spec, params, hp)
        state = sp.with_masks(tx.init(p), m)
        for t in range(2):
            updates, state = tx.update(random_like(jax.random.PRNGKey(10 + t), p), state, p,
                                       key=jax.random.PRNGKey(t), hparams=hp)
            p = optax.apply_updates(p, updates)
        return p, state.inner_state[1][0].count

    (p, count) = jax.jit(jax.vmap(run))(hp)
    np.testing.assert_array_equal(count, [2, 1])  # the update at t = 0 skipped: one Adam step
    for r in range(2):
        alone, _ = jax.jit(run)(jax.tree.map(lambda x: x[r], hp))
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(alone)):
            np.testing.assert_allclose(np.asarray(a)[r], b, rtol=1e-6, atol=1e-7)


def test_set_and_rigl_change_masks_only_on_the_interval_grid(tiny_mlp):
    """RigL every 4 steps from 2 to an off-grid end of 13: t = 2, 6, 10 (rigl's UpdateSchedule);
    t = 13 is not an update, so with skip_gradient no gradient step is lost there. Pruning does
    update at its off-grid end, to reach its final sparsity."""
    _, _, spec = tiny_mlp
    rigl = sp.SparseHParams.make("rigl", 0.8, update_interval=4, start=2, end=13, skip_gradient=True)
    prune = sp.SparseHParams.make("prune", 0.8, update_interval=4, start=2, end=13)
    changes = lambda hp: [t for t in range(20) if bool(sp.mask_changes(spec, hp, t))]  # noqa: E731
    assert changes(rigl) == [2, 6, 10]
    assert changes(prune) == [6, 10, 13]
