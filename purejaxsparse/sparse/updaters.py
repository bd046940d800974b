"""Mask updates of every method as one traced rule, and masked optimizer steps.

Every method is a declaration (methods.py) read by one drop-then-grow step per layer, so runs of
different methods share one program (no `lax.switch` computing every method's sorts). At an
update of a layer with nnz active weights:

    target = k_l at a cut; min(k_l(s_t), nnz) on a polynomial schedule; nnz otherwise
    n_swap = floor(f(t) target) if the method regrows, else 0
    keep   = the target - n_swap highest drop scores among active weights (|w| for the built-ins)
    grow   = the n_swap highest grow scores among weights not kept (|grad| for RigL, random for SET)
    new mask = keep | grow

| method (declaration) | when | n_keep | n_grow |
|---|---|---|---|
| dense, dense_width (schedule never) | never | nnz | 0 |
| static, SET, RigL (init sparse), dense_then_cut, start > 0 | t == start (one-off cut) | k_l | 0 |
| SET, RigL (schedule interval, regrow) | grid steps start + k interval <= end (dense_then_cut: > start) | nnz - floor(f(t) nnz) | floor(f(t) nnz) |
| prune (schedule polynomial) | update steps in (start, end] | min(k_l(s_t), nnz) | 0 |

t counts the optimizer steps done before the update, which runs before the next optimizer
step on that step's gradient (as rigl's mask updaters inside the train step): SET/RigL with
start 0 update at t = 0, before any training, with the full drop fraction f(0) = f0, as the
original does. k_l: final per-layer count; f(t): cosine drop fraction over [0, end];
s_t: the polynomial schedule applied to each layer's final sparsity (as the original code's
per-layer PolynomialDecay does). A weight just dropped may be regrown; it then counts as kept,
not grown. The method's properties are tables indexed by the traced `hp.method`; each distinct
score function is computed once per layer and picked with `jnp.select`, before one sort for
keep and one for grow.

What happens to the gradient on a step where the mask changes differs between the original
code bases, so it is a per-run setting (`skip_gradient`, see `sparse_updates`): rigl's TF-Agents
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
from .hparams import DENSE_THEN_CUT, SparseHParams
from .masks import apply_masks, starts_sparse, top_k_mask
from .methods import distinct, jit_with_registry, per_method, registered
from .schedules import cosine_drop_fraction, is_update_step, polynomial_sparsity
from .spec import SparseSpec


def _layer_counts(spec: SparseSpec, hp: SparseHParams, step):
    """What the update at `step` does, as traced values: the per-layer counts it prunes or cuts
    to, the drop fraction, and which kind of update it is (all False: none)."""
    m = hp.method
    final = layer_sparsities(spec.shapes, hp.sparsity, hp.distribution)
    poly = polynomial_sparsity(step, 1.0, hp.start, hp.end)
    on_schedule = is_update_step(step, hp.start, hp.end, hp.update_interval)
    cut = ((step == hp.start) & (hp.start > 0) & (hp.start_mode == DENSE_THEN_CUT) & starts_sparse(hp))
    # interval updates only on the grid, as rigl's UpdateSchedule: at an off-grid `end` the
    # cosine drop fraction is 0, so the update would change nothing, yet skip_gradient would skip
    on_grid = (step - hp.start) % jnp.maximum(hp.update_interval, 1) == 0
    interval = on_schedule & on_grid & per_method(m, lambda d: d.schedule == "interval") & ~cut
    prune = on_schedule & (step > hp.start) & per_method(m, lambda d: d.schedule == "polynomial")
    return dict(
        final=active_counts(spec.shapes, final),
        prune=active_counts(spec.shapes, final * poly),
        drop_fraction=cosine_drop_fraction(step, hp.drop_fraction, hp.end),
        cut=cut, prune_now=prune, swap=(interval | prune) & per_method(m, lambda d: d.regrow),
        changes=cut | interval | prune,
    )


def mask_changes(spec: SparseSpec, hp: SparseHParams, step) -> jnp.ndarray:
    """Whether `update_masks` would change anything at this step (traced bool)."""
    return _layer_counts(spec, hp, step)["changes"]


def _pick(index, values):
    """values[index] for a traced index (the value itself when there is one)."""
    if len(values) == 1:
        return values[0]
    return jnp.select([index == i for i in range(len(values))], values)


def _below_active(score, mask):
    """A fill for inactive weights below every active (non-NaN) score: -1 for non-negative
    scores such as |w|, so they rank after every active weight."""
    lowest = jnp.min(jnp.where(mask & ~jnp.isnan(score), score, 0.0))
    return jnp.minimum(lowest, 0.0) - 1.0


@jit_with_registry(static_argnames="spec")
def update_masks(key: jax.Array, spec: SparseSpec, hp: SparseHParams, step, masks, params, grads):
    """New mask tree at step `step`: `step` optimizer steps done (see the module table).

    params: current (masked) params; grads: the dense gradient of the loss on the current batch
    (also at masked positions: differentiate with respect to the masked params); scores read
    them (RigL's grow score the gradient). Only kernel masks change.
    """
    c = _layer_counts(spec, hp, step)
    drops = distinct(d.drop for d in registered())
    grows = distinct(d.grow for d in registered())
    drop_id = per_method(hp.method, lambda d: drops.index(d.drop))
    grow_id = per_method(hp.method, lambda d: grows.index(d.grow))
    leaves = spec.flatten(masks)
    weights = spec.kernel_leaves(params)
    grad_leaves = spec.kernel_leaves(grads)
    for l, i in enumerate(spec.kernels):
        mask, w, g = leaves[i], weights[l], grad_leaves[l]
        nnz = jnp.sum(mask, dtype=jnp.int32)
        target = jnp.where(c["cut"], c["final"][l], jnp.where(c["prune_now"], jnp.minimum(c["prune"][l], nnz), nnz))
        n_swap = jnp.where(c["swap"], jnp.floor(c["drop_fraction"] * target).astype(jnp.int32), 0)
        layer_key = jax.random.fold_in(key, l)
        scores = {f: f(w, g, layer_key) for f in distinct(drops + grows)}
        drop_score = _pick(drop_id, [scores[f] for f in drops])
        grow_score = _pick(grow_id, [scores[f] for f in grows])
        keep = top_k_mask(jnp.where(mask, drop_score, _below_active(drop_score, mask)), target - n_swap)
        grow = top_k_mask(jnp.where(keep, -jnp.inf, grow_score), n_swap)
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


def _exact_update(skip, scale, p, u, old, new):
    """The update of one weight p so that p + update is exactly the masked step's new weight.

    The update is a product whose factors, not the product, are chosen per entry: scale * u
    where the gradient step moves the weight (a grown weight's p is 0), -1 * p where the weight
    ends masked (p + -p is exactly 0) and -1 * 0 where a skipped step keeps it (p + -0.0 is p).
    So the params' add takes the step's last multiply as it is, and a compiler that fuses it
    into one multiply-add (XLA does) gives what it gives a plain optax step.
    """
    moves = ~skip & new
    factor = jnp.where(moves, scale, -1.0).astype(u.dtype)
    return factor * jnp.where(moves, u, jnp.where(old & new, 0.0, p))


def sparse_updates(key, spec: SparseSpec, hp: SparseHParams, step, tx: optax.GradientTransformation,
                   params, opt_state, masks, grads, *, scale=1.0, **extra_args):
    """One training step of a sparse network as optax updates: the scheduled mask update at
    `step` (optimizer steps done), then `tx`'s step on the gradients masked by the new mask,
    multiplied by `scale` (e.g. -learning_rate when `tx` gives a direction).

    params must be masked (masked entries 0). Returns (updates, opt_state, masks), with
    `optax.apply_updates(params, updates)` the new params: masked weights exactly 0 (params
    finite), grown weights starting from 0 with zeroed moments. With `hp.skip_gradient`, a
    step whose mask changes applies no gradient: params only follow the new mask and the
    optimizer state is untouched except for the reset moments, so Adam's count does not
    advance (rigl sparse_optimizers_base.py, SparseRigLOptimizerBase.apply_gradients;
    JaxPruner base_updater.wrap_optax).
    """
    skip = mask_changes(spec, hp, step) & hp.skip_gradient
    fixed, fixed_state, new_masks = maybe_update_masks(key, spec, hp, step, params, opt_state, masks, grads)
    inner, stepped_state = tx.update(apply_masks(grads, new_masks), fixed_state, fixed, **extra_args)
    opt_state = jax.tree.map(lambda s, f: jnp.where(skip, f, s), stepped_state, fixed_state)
    updates = jax.tree.map(functools.partial(_exact_update, skip, scale), params, inner, masks, new_masks)
    return updates, opt_state, new_masks
