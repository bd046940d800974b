"""Mask updates of every method as one traced rule, and masked optimizer steps.

All methods are one drop-then-grow step per layer with per-method counts, so runs of different
methods share one program (no `lax.switch` computing every method's sorts):

    keep = the n_keep largest |w| among active weights
    grow = the n_grow highest grow scores among weights not kept (|grad| for RigL, random for SET)
    new mask = keep | grow

| method | when | n_keep | n_grow |
|---|---|---|---|
| dense, dense_width | never | nnz | 0 |
| static, SET, RigL, dense_then_cut, start > 0 | t == start (one-off cut) | k_l | 0 |
| SET, RigL | grid steps start + k interval <= end (dense_then_cut: > start) | nnz - floor(f(t) nnz) | floor(f(t) nnz) |
| prune | update steps in (start, end] | k_l(s_t) | 0 |

t counts the optimizer steps done before the update, which runs before the next optimizer
step on that step's gradient (as rigl's mask updaters inside the train step): SET/RigL with
start 0 update at t = 0, before any training, with the full drop fraction f(0) = f0, as the
original does. k_l: final per-layer count; f(t): cosine drop fraction over [0, end];
s_t: the polynomial schedule applied to each layer's final sparsity (as the original code's
per-layer PolynomialDecay does). A weight just dropped may be regrown; it then counts as kept,
not grown.

What happens to the gradient on a step where the mask changes differs between the original
code bases, so it is a per-run setting (`skip_gradient`, see `sparse_step`): rigl's TF-Agents
trainers update the mask, then apply the gradient; rigl's RigL optimizer (Dopamine Atari code)
and JaxPruner's SET/RigL (`skip_gradients=True`) update the mask instead of applying it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from .batching import cond_any
from .distributions import active_counts, layer_sparsities
from .hparams import DENSE_THEN_CUT, PRUNE, RIGL, SET, STATIC, SparseHParams
from .masks import apply_masks, top_k_mask
from .schedules import cosine_drop_fraction, is_update_step, polynomial_sparsity
from .spec import SparseSpec


def _layer_counts(spec: SparseSpec, hp: SparseHParams, step):
    """(is any change, per-layer n_keep fn inputs) for this step; all traced scalars."""
    m = hp.method
    final = layer_sparsities(spec.shapes, hp.sparsity, hp.distribution)
    poly = polynomial_sparsity(step, 1.0, hp.start, hp.end)
    on_schedule = is_update_step(step, hp.start, hp.end, hp.update_interval)
    after_start = step > hp.start
    cut = ((step == hp.start) & (hp.start > 0) & (hp.start_mode == DENSE_THEN_CUT)
           & ((m == STATIC) | (m == SET) | (m == RIGL)))
    # SET/RigL only on the interval grid, as rigl's UpdateSchedule: at an off-grid `end` the
    # cosine drop fraction is 0, so the update would change nothing, yet skip_gradient would skip
    on_grid = (step - hp.start) % jnp.maximum(hp.update_interval, 1) == 0
    dst = on_schedule & on_grid & ((m == SET) | (m == RIGL)) & ~cut
    prune = on_schedule & after_start & (m == PRUNE)
    return dict(
        final=active_counts(spec.shapes, final),
        prune=active_counts(spec.shapes, final * poly),
        drop_fraction=cosine_drop_fraction(step, hp.drop_fraction, hp.end),
        cut=cut, dst=dst, prune_now=prune, changes=cut | dst | prune,
    )


def mask_changes(spec: SparseSpec, hp: SparseHParams, step) -> jnp.ndarray:
    """Whether `update_masks` would change anything at this step (traced bool)."""
    return _layer_counts(spec, hp, step)["changes"]


@functools.partial(jax.jit, static_argnames="spec")
def update_masks(key: jax.Array, spec: SparseSpec, hp: SparseHParams, step, masks, params, grads):
    """New mask tree at step `step`: `step` optimizer steps done (see the module table).

    params: current (masked) params; grads: the dense gradient of the loss on the current batch
    (also at masked positions: differentiate with respect to the masked params); only RigL
    reads it. Only kernel masks change.
    """
    c = _layer_counts(spec, hp, step)
    leaves = spec.flatten(masks)
    weights = spec.kernel_leaves(params)
    grad_leaves = spec.kernel_leaves(grads)
    for l, i in enumerate(spec.kernels):
        mask, w, g = leaves[i], weights[l], grad_leaves[l]
        nnz = jnp.sum(mask, dtype=jnp.int32)
        n_drop = jnp.floor(c["drop_fraction"] * nnz).astype(jnp.int32)
        n_keep = jnp.where(c["cut"], c["final"][l],
                           jnp.where(c["dst"], nnz - n_drop,
                                     jnp.where(c["prune_now"], jnp.minimum(c["prune"][l], nnz), nnz)))
        n_grow = jnp.where(c["dst"], n_drop, 0)
        keep = top_k_mask(jnp.where(mask, jnp.abs(w), -1.0), n_keep)
        random = jax.random.uniform(jax.random.fold_in(key, l), mask.shape)
        grow_score = jnp.where(hp.method == RIGL, jnp.abs(g).astype(jnp.float32), random)
        grow = top_k_mask(jnp.where(keep, -jnp.inf, grow_score), n_grow)
        leaves[i] = keep | grow
    return spec.unflatten(leaves)


def grown(old_masks, new_masks):
    """Entries newly switched on (were off, are on)."""
    return jax.tree.map(lambda o, n: n & ~o, old_masks, new_masks)


def reset_moments(opt_state, keep):
    """Zero every params-shaped buffer of an optimizer state (Adam mu/nu, ...) where `keep` is False.

    A buffer is any subtree of `opt_state` with exactly the tree structure of `keep` (the params'
    structure), so this needs no optimizer object; params must be a container (dict), not a leaf.
    """
    target = jax.tree.structure(keep)
    is_buffer = lambda x: jax.tree.structure(x) == target  # noqa: E731

    def reset(node):
        if not is_buffer(node):
            return node
        return jax.tree.map(lambda s, k: jnp.where(k, s, jnp.zeros_like(s)), node, keep)

    return jax.tree.map(reset, opt_state, is_leaf=is_buffer)


def apply_mask_update(params, opt_state, old_masks, new_masks):
    """Make params/optimizer state agree with a new mask.

    Grown weights start at exactly 0 with zeroed optimizer moments; dropped weights become 0.
    Moments are also zeroed wherever the new mask is off, so masked entries hold no state.
    """
    new_conn = grown(old_masks, new_masks)
    keep = jax.tree.map(lambda n, g: n & ~g, new_masks, new_conn)
    params = jax.tree.map(lambda p, k: jnp.where(k, p, jnp.zeros_like(p)), params, keep)
    return params, reset_moments(opt_state, keep)


def masked_apply_gradients(tx: optax.GradientTransformation, params, opt_state, grads, masks):
    """One optimizer step that keeps masked weights exactly zero.

    Gradients are masked before the optimizer (so moments stay zero off-mask and weight decay
    sees zeros) and params are masked again after the update.
    """
    updates, opt_state = tx.update(apply_masks(grads, masks), opt_state, params)
    params = apply_masks(optax.apply_updates(params, updates), masks)
    return params, opt_state


def maybe_update_masks(key, spec: SparseSpec, hp: SparseHParams, step, params, opt_state, masks, grads):
    """Mask update + param/moment fix-up at the steps the schedule says, else nothing.

    Returns (params, opt_state, masks). Under `jax.vmap` the update runs only at steps where
    some run changes its mask (`cond_any`), so the steps in between cost nothing.
    """

    def update(ops):
        key, hp, step, params, opt_state, masks, grads = ops
        new_masks = update_masks(key, spec, hp, step, masks, params, grads)
        params, opt_state = apply_mask_update(params, opt_state, masks, new_masks)
        return params, opt_state, new_masks

    def keep(ops):
        return ops[3], ops[4], ops[5]

    step = jnp.asarray(step, jnp.int32)
    ops = (key, hp, step, params, opt_state, masks, grads)
    return cond_any(mask_changes(spec, hp, step), update, keep, ops)


def sparse_step(key, spec: SparseSpec, hp: SparseHParams, step, tx: optax.GradientTransformation,
                params, opt_state, masks, grads):
    """One training step of a sparse network: the scheduled mask update at `step` (optimizer
    steps done), then the gradient applied under the new mask.

    With `hp.skip_gradient`, a step whose mask changes applies no gradient: params only follow
    the new mask (dropped weights 0, grown weights 0) and the optimizer state is untouched except
    for the reset moments, so Adam's count does not advance (rigl sparse_optimizers_base.py,
    SparseRigLOptimizerBase.apply_gradients; JaxPruner base_updater.wrap_optax). Returns
    (params, opt_state, masks).
    """
    skip = mask_changes(spec, hp, step) & hp.skip_gradient
    params, opt_state, masks = maybe_update_masks(key, spec, hp, step, params, opt_state, masks, grads)
    stepped = masked_apply_gradients(tx, params, opt_state, grads, masks)
    params, opt_state = jax.tree.map(lambda new, old: jnp.where(skip, old, new), stepped, (params, opt_state))
    return params, opt_state, masks
