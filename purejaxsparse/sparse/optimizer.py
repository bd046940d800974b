"""The sparse optimizer: one network's masks, optimizer-step count and mask-update schedule
around an optax optimizer, in optax's init/update shape.

    opt = sparse(spec, optax.adam(1e-3))
    state = opt.init(params, masks)                 # masks from init_sparse
    params, state = opt.update(grads, state, params, key, hp)

`update` runs the scheduled mask update at `state.count` (optimizer steps done, the unit of
update_interval/start/end) and then the gradient step under the new mask, or, with
`hp.skip_gradient`, the mask update in place of the gradient step (`updaters.sparse_step`).
It returns new params rather than optax's updates, because a mask update rewrites params
(dropped weights become 0) as well as the optimizer's moments.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .hparams import SparseHParams
from .spec import SparseSpec
from .updaters import sparse_step


class SparseState(NamedTuple):
    """masks: bool tree like the params; inner_state: the wrapped optimizer's state;
    count: optimizer steps done (int32), the clock of the mask schedule."""

    masks: Any
    inner_state: Any
    count: jax.Array


class SparseOptimizer(NamedTuple):
    init: Callable[[Any, Any], SparseState]
    update: Callable[..., tuple[Any, SparseState]]


def sparse(spec: SparseSpec, inner: optax.GradientTransformation) -> SparseOptimizer:
    """The sparse optimizer of a network with SparseSpec `spec` around `inner` (e.g. Adam).

    init(params, masks) -> SparseState; update(grads, state, params, key, hp) -> (params,
    state): grads are the dense gradient at the masked params (RigL grows by it); hp is the
    run's SparseHParams (traced). Masked weights stay exactly 0.
    """

    def init(params, masks) -> SparseState:
        return SparseState(masks, inner.init(params), jnp.zeros((), jnp.int32))

    def update(grads, state: SparseState, params, key: jax.Array, hp: SparseHParams):
        params, inner_state, masks = sparse_step(key, spec, hp, state.count, inner, params, state.inner_state,
                                                 state.masks, grads)
        return params, SparseState(masks, inner_state, state.count + 1)

    return SparseOptimizer(init, update)
