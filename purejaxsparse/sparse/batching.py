"""A `lax.cond` that stays a real branch under `jax.vmap`.

Under vmap, `lax.cond` with a per-member predicate computes *both* branches for every member
and selects. Mask updates are rare (every ~1000 steps) but costly (sorts of every kernel), so
that turns a free check into the most expensive part of a training step. `cond_any` gives the
cond its own batching rule (jax.custom_batching.custom_vmap): take the branch when *any* member
needs it, then select per member. Unbatched, it is `lax.cond`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                        on_true, on_false)


def cond_any(pred, true_fn, false_fn, operands):
    """`lax.cond(pred, true_fn, false_fn, operands)` whose vmap runs true_fn only if any member's
    pred holds. All batched inputs must be in `operands` (closures must be static values)."""

    @jax.custom_batching.custom_vmap
    def branch(pred, operands):
        return jax.lax.cond(pred, true_fn, false_fn, operands)

    @branch.def_vmap
    def rule(axis_size, in_batched, pred, operands):
        pred_batched, ops_batched = in_batched
        ops = jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
                           operands, ops_batched)
        preds = pred if pred_batched else jnp.broadcast_to(pred, (axis_size,))

        def some_true(ops):
            return _select(preds, jax.vmap(true_fn)(ops), jax.vmap(false_fn)(ops))

        out = jax.lax.cond(jnp.any(preds), some_true, jax.vmap(false_fn), ops)
        return out, jax.tree.map(lambda _: True, out)

    return branch(pred, operands)
