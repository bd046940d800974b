"""Uniform replay buffers in device memory, cheap under vmap: transitions, or pixel frames stored once.

Storage is [capacity, E, ...] per field (E parallel envs). Binary observations (MinAtar's) are
stored as packed bits, 32x smaller than float32, and unpacked to the env's float32 when sampled,
so a batch holds exactly the values the env gave. The write position comes from the
global iteration counter, which is *not* batched over runs (it is the same for every run of a
sweep), so under `jax.vmap` a write stays an in-place dynamic-update-slice of one row instead of
a scatter or a select over the whole buffer. Sampling gathers B random (row, env) pairs.
"""

from __future__ import annotations

import dataclasses
import math

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


# ---- binary observations as packed bits -------------------------------------------------------

def pack_bits(obs: jax.Array) -> jax.Array:
    """[E, *shape] observations of 0s and 1s -> uint8 [E, ceil(prod(shape) / 8)], 8 entries a byte."""
    return jnp.packbits(obs.reshape(obs.shape[0], -1) != 0, axis=-1)


def unpack_bits(packed: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """Inverse of `pack_bits` for any leading axes: [..., bytes] -> [..., *shape] of `dtype`."""
    bits = jnp.unpackbits(packed, axis=-1, count=math.prod(shape))
    return bits.reshape(*packed.shape[:-1], *shape).astype(dtype)


# ---- frame replay: pixel observations stored once, stacks rebuilt when sampling ---------------

def init_frames(capacity: int, num_envs: int, frame_shape: tuple[int, ...], dtype=jnp.uint8) -> dict:
    """Storage for `capacity` rows x E envs of single frames (uint8) and what each row needs.

    Row t holds what iteration t saw and did: the newest frame of the observation acted on,
    the action, the reward and termination that followed, `valid` (False on an env's reset
    step: not a transition) and `first` (that observation starts an episode). A 4-frame stack
    is rebuilt from rows t-3..t, so 1M Atari transitions cost 7 GB per run instead of 28 GB.
    """
    rows = lambda shape, dt: jnp.zeros((capacity, num_envs, *shape), dt)
    return {"frame": rows(frame_shape, dtype), "action": rows((), jnp.int32), "reward": rows((), jnp.float32),
            "terminated": rows((), bool), "valid": rows((), bool), "first": rows((), bool)}


def _stack(frames: jax.Array, first: jax.Array) -> jax.Array:
    """Stacks [B, S, H, W] (newest last) from S consecutive rows' frames [B, S, H, W] and their
    `first` flags [B, S]: slots before the newest episode start repeat that start's frame (as
    EnvPool fills a reset stack), so no stack mixes two episodes."""
    s = frames.shape[1]
    offsets = jnp.arange(s)
    start = jnp.max(jnp.where(first & (offsets > 0), offsets, 0), axis=1)          # [B]
    source = jnp.maximum(offsets[None, :], start[:, None])                            # [B, S]
    stacked = jnp.take_along_axis(frames, source[:, :, None, None], axis=1)
    return jnp.moveaxis(stacked, 1, -1)


def sample_frames(key: jax.Array, buffer: dict, rows_written, batch_size: int, stack: int = 4) -> dict:
    """B transitions from the rows whose stacks and next stacks are still in the buffer.

    rows_written: iterations stored so far (unbatched). Transition i uses rows i-stack+1 .. i+1,
    so i ranges over [oldest + stack - 1, newest - 1]. Returns obs and next_obs uint8
    [B, H, W, stack], action, reward, terminated and `weight` (1.0 for a real transition, 0.0
    for a reset step or a transition whose next row starts a new episode; the loss averages
    over weights, Dopamine's rejection of invalid indices as a mask).
    """
    capacity, num_envs = buffer["frame"].shape[:2]
    newest = rows_written - 1
    oldest = jnp.maximum(0, rows_written - capacity)
    low = oldest + stack - 1
    count = jnp.maximum(newest - low, 1).astype(jnp.uint32) * num_envs
    flat = (jax.random.bits(key, (batch_size,), jnp.uint32) % count).astype(jnp.int32)
    i, env = low + flat // num_envs, flat % num_envs
    window = (i[:, None] + jnp.arange(-stack + 1, 2)[None, :]) % capacity            # [B, stack+1]
    frames = buffer["frame"][window, env[:, None]]                                    # [B, stack+1, H, W]
    first = buffer["first"][window, env[:, None]]
    row = window[:, -2]
    valid = buffer["valid"][row, env] & ~first[:, -1]
    return {"obs": _stack(frames[:, :-1], first[:, :-1]), "next_obs": _stack(frames[:, 1:], first[:, 1:]),
            "action": buffer["action"][row, env], "reward": buffer["reward"][row, env],
            "terminated": buffer["terminated"][row, env], "weight": valid.astype(jnp.float32)}


# ---- the two kinds as one interface: an agent chooses its replay once --------------------------

@dataclasses.dataclass(frozen=True)
class TransitionReplay:
    """Whole transitions per row (obs and next_obs): vector observations.

    binary_obs: the env's observations (of `obs_shape`) are all 0 or 1 (`Env.binary_obs`), so obs
    and next_obs are stored as packed bits (`pack_bits`) and sampled back as float32. next_obs keeps a store of its
    own: on an episode's last step it is the final observation, which the next row (the reset
    observation) does not hold.
    """

    capacity: int
    binary_obs: bool = False
    obs_shape: tuple[int, ...] = ()

    def _stored(self, obs: jax.Array) -> jax.Array:
        return pack_bits(obs) if self.binary_obs else obs

    def init(self, obs: jax.Array, action: jax.Array) -> dict:
        e = obs.shape[0]
        stored = self._stored(obs)
        return init_buffer(self.capacity, {"obs": stored, "next_obs": stored, "action": action,
                                           "reward": jnp.zeros(e, jnp.float32), "terminated": jnp.zeros(e, bool)})

    def add(self, buffer: dict, t, obs, action, reward, terminated, info: dict, first) -> dict:
        """Iteration t's step from `obs` (first: the env's step count was 0; unused here)."""
        return add(buffer, t, {"obs": self._stored(obs), "next_obs": self._stored(info["final_obs"]),
                               "action": action, "reward": reward, "terminated": terminated})

    def sample(self, key, buffer: dict, iterations, batch_size: int) -> dict:
        """B transitions from what `iterations` iterations stored."""
        batch = sample(key, buffer, iterations, batch_size)
        if self.binary_obs:
            for k in ("obs", "next_obs"):
                batch[k] = unpack_bits(batch[k], self.obs_shape, jnp.float32)
        return batch


@dataclasses.dataclass(frozen=True)
class FrameReplay:
    """Each pixel frame stored once, stacks of `stack` rebuilt when sampling (EnvPool Atari)."""

    capacity: int
    stack: int

    def init(self, obs: jax.Array, action: jax.Array) -> dict:
        return init_frames(self.capacity, obs.shape[0], obs.shape[1:-1], obs.dtype)

    def add(self, buffer: dict, t, obs, action, reward, terminated, info: dict, first) -> dict:
        return add(buffer, t, {"frame": obs[..., -1], "action": action, "reward": reward, "terminated": terminated,
                               "valid": info.get("valid", jnp.ones_like(terminated)), "first": first})

    def sample(self, key, buffer: dict, iterations, batch_size: int) -> dict:
        """B transitions (with `weight`) from what `iterations` iterations stored."""
        return sample_frames(key, buffer, iterations, batch_size, self.stack)
