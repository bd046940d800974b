"""Uniform replay buffer in device memory, cheap under vmap.

Storage is [capacity, E, ...] per field (E parallel envs). The write position comes from the
global iteration counter, which is *not* batched over runs (it is the same for every run of a
sweep), so under `jax.vmap` a write stays an in-place dynamic-update-slice of one row instead of
a scatter or a select over the whole buffer. Sampling gathers B random (row, env) pairs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_buffer(capacity: int, example: dict) -> dict:
    """Zero storage for `capacity` rows of a transition `example` (leaves shaped [E, ...])."""
    return jax.tree.map(lambda x: jnp.zeros((capacity, *x.shape), x.dtype), example)


def add(buffer: dict, row, transition: dict) -> dict:
    """Write one row (all E envs of one iteration) at position `row` (unbatched int)."""
    capacity = jax.tree.leaves(buffer)[0].shape[0]
    pos = row % capacity
    return jax.tree.map(
        lambda store, x: jax.lax.dynamic_update_index_in_dim(store, x.astype(store.dtype), pos, 0),
        buffer, transition)


def sample(key: jax.Array, buffer: dict, rows_filled, batch_size: int) -> dict:
    """B transitions drawn uniformly from the first `rows_filled` rows (all envs).

    One draw of random bits over the flat (row, env) index space: on CPU each PRNG call is a
    loop of its own, and a training step makes many. The modulo bias is below n / 2^32.
    """
    capacity, num_envs = jax.tree.leaves(buffer)[0].shape[:2]
    n = jnp.clip(rows_filled, 1, capacity).astype(jnp.uint32) * num_envs
    flat = (jax.random.bits(key, (batch_size,), jnp.uint32) % n).astype(jnp.int32)
    rows, envs = flat // num_envs, flat % num_envs
    return jax.tree.map(lambda store: store[rows, envs], buffer)
