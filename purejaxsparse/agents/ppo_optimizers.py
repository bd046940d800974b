"""PPO's optimizers: each network's sparse Adam, with the gradient clip where the original
puts it (per network, or over both networks together)."""

from __future__ import annotations

import optax

from .. import sparse as sp
from .common import SparseNetwork


def clip_jointly(grads, max_norm):
    """Scale a tree of gradients (e.g. (actor, critic)) so its global norm is at most max_norm."""
    return optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())[0]


def ppo_optimizers(actor: SparseNetwork, critic: SparseNetwork, hp, learning_rate, clip: bool):
    """(actor, critic) sparse optimizers around Adam (the step size applied by the sparse
    optimizer, as sparse_adam does), each network's gradients clipped on their own with `clip`.
    The clip sits inside the sparse optimizer: the original clips the masked gradients (the norm
    over active weights), while a clip chained before it would see the dense ones."""
    adam = optax.scale_by_adam(eps=hp.adam_eps)
    inner = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), adam) if clip else adam
    return (sp.sparse(actor.spec, inner, learning_rate=learning_rate),
            sp.sparse(critic.spec, inner, learning_rate=learning_rate))
