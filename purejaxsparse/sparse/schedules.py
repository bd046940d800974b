"""Schedules of sparse training, all jit-safe with traced arguments.

Steps count optimizer steps. Formulas in docs/reference.md (Zhu & Gupta 2017; Evci et al. 2020).
"""

from __future__ import annotations

import jax.numpy as jnp


def polynomial_sparsity(step, final_sparsity, start, end, power: int = 3):
    """Gradual-pruning target s_t = s_f * (1 - (1 - (t - t0) / (t1 - t0))**3).

    0 before t0 = start, s_f from t1 = end on (the mask freezes after end).
    """
    span = jnp.maximum(jnp.asarray(end) - start, 1)
    progress = jnp.clip((jnp.asarray(step) - start) / span, 0.0, 1.0)
    return final_sparsity * (1.0 - (1.0 - progress) ** power)


def cosine_drop_fraction(step, initial_fraction, end):
    """SET/RigL drop fraction f(t) = f0 / 2 * (1 + cos(pi * min(t, T) / T)), T = end."""
    horizon = jnp.maximum(jnp.asarray(end), 1)
    t = jnp.minimum(jnp.asarray(step), horizon)
    return 0.5 * initial_fraction * (1.0 + jnp.cos(jnp.pi * t / horizon))


def is_update_step(step, start, end, interval):
    """Whether the mask changes before the optimizer step that follows `step` steps.

    `step` counts the optimizer steps already done (the original's train-step counter when its
    mask updater runs, before that step's gradients are applied), so step 0 is before any
    training. True for start <= t <= end with (t - start) a multiple of `interval`, as
    rigl's `UpdateSchedule.is_update_iter` (which also updates at t = 0), and at t == end
    itself so that pruning always reaches its final target even when end - start is not a
    multiple of the interval. Never after `end`.
    """
    step = jnp.asarray(step)
    on_grid = (step - start) % jnp.maximum(interval, 1) == 0
    return (step >= start) & (step <= end) & (on_grid | (step == end))
