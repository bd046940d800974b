"""The sparse optimizer: an optax transform that keeps one network's masks, optimizer-step
count and mask-update schedule around an inner optax optimizer.

    tx = optax.chain(optax.clip_by_global_norm(1.0), sparse(spec, optax.adam(1e-3)))
    params, masks = init_sparse(key, spec, params, hp)
    state = with_masks(tx.init(params), masks)
    updates, state = tx.update(grads, state, params, key=key, hparams=hp)
    params = optax.apply_updates(params, updates)

`update` runs the scheduled mask update at the state's count (optimizer steps done, the unit
of update_interval/start/end) and then the inner optimizer's step on the gradients masked by
the new mask, or, with `hparams.skip_gradient`, the mask update in place of the gradient step
(`updaters.sparse_updates`). Its updates make `params + updates` exactly the new params: masked
weights exactly 0, grown weights starting from 0. `key` and `hparams` (the run's
SparseHParams, traced, so runs of different methods and sparsities vmap together) are optax
extra args: keywords, passed on by `optax.chain`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .spec import SparseSpec
from .updaters import sparse_updates


class SparseState(NamedTuple):
    """masks: bool tree like the params; inner_state: the wrapped optimizer's state;
    count: optimizer steps done (int32), the clock of the mask schedule."""

    masks: Any
    inner_state: Any
    count: jax.Array


def sparse(spec: SparseSpec, inner: optax.GradientTransformation,
           learning_rate=None) -> optax.GradientTransformationExtraArgs:
    """The sparse optimizer of a network with SparseSpec `spec` around `inner` (e.g. Adam).

    init(params) -> SparseState with every mask on (set the run's masks with `with_masks`);
    update(grads, state, params, *, key, hparams) -> (updates, state): grads are the dense
    gradient at the params (RigL grows by it), which must be masked (masked entries 0, as
    init_sparse gives them and these updates keep them); hparams is the run's SparseHParams.
    Other extra args go to `inner`.

    learning_rate (a scalar, may be traced): `inner` then gives the step direction (e.g.
    `optax.scale_by_adam()`) and the updates scale it by -learning_rate themselves, in the
    multiply that `params + updates` can fuse with (XLA makes it one multiply-add, as in a plain
    `optax.sgd` or `optax.adam` step; with `inner=optax.adam(lr)` the step is rounded before
    the add instead).
    """
    inner = optax.with_extra_args_support(inner)
    scale = 1.0 if learning_rate is None else -1 * learning_rate  # as optax.scale_by_learning_rate

    def init(params) -> SparseState:
        masks = jax.tree.map(lambda p: jnp.ones(jnp.shape(p), bool), params)
        return SparseState(masks, inner.init(params), jnp.zeros((), jnp.int32))

    def update(grads, state: SparseState, params=None, *, key: jax.Array, hparams, **extra_args):
        if params is None:
            raise ValueError("sparse: update needs the params (mask updates rank them by magnitude)")
        updates, inner_state, masks = sparse_updates(key, spec, hparams, state.count, inner, params,
                                                     state.inner_state, state.masks, grads, scale=scale,
                                                     **extra_args)
        return updates, SparseState(masks, inner_state, state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def sparse_adam(spec: SparseSpec, learning_rate, **adam_kwargs) -> optax.GradientTransformationExtraArgs:
    """`sparse` around Adam, stepping as `optax.adam(learning_rate, **adam_kwargs)` does, with
    the step size applied by `sparse` itself (its `learning_rate`: the multiply the params'
    add fuses with, as in optax.adam's own step)."""
    return sparse(spec, optax.scale_by_adam(**adam_kwargs), learning_rate=learning_rate)


def _sparse_state(state) -> SparseState:
    """The one SparseState in an optimizer state (the state itself, or inside a chain's)."""
    found = optax.tree_utils.tree_get(state, SparseState.__name__)  # KeyError if several
    if found is None:
        raise ValueError("this optimizer state holds no SparseState (no `sparse` transform)")
    return found


def with_masks(state, masks):
    """`state` (a `sparse` transform's, or a chain's holding one) with the run's masks, e.g.
    the initial masks from init_sparse: `with_masks(tx.init(params), masks)`."""
    return optax.tree_utils.tree_set(state, SparseState=_sparse_state(state)._replace(masks=masks))


def sparse_masks(state):
    """The current masks in `state` (a `sparse` transform's, or a chain's holding one)."""
    return _sparse_state(state).masks


def sparse_count(state) -> jax.Array:
    """Optimizer steps done (the mask schedule's clock) in `state`, plain or chained."""
    return _sparse_state(state).count
