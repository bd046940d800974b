"""ReDo (Sokar et al. 2023, "The Dormant Neuron Phenomenon in Deep RL"): recycle dormant units.

At a recycle step, every tau-dormant unit (`measure.dormant_units`, the one definition the
`dormant_frac` metric reads) of a recyclable hidden layer gets

- its incoming weights drawn afresh, its bias set to 0,
- its outgoing weights (the next kernel's inputs from it) set to 0, so the network computes
  the same function right after recycling,
- the Adam moments of those incoming and outgoing weights set to 0 (the step count is kept),

as Dopamine's `NeuronRecycler` (`dopamine/labs/redo/weight_recyclers.py`): `recycle_dead_neurons`
with its defaults `init_method_outgoing='zero'`, `weight_scaling=False`; the bias is zeroed in
`create_masks`; moments are reset on kernels only (its bias masks are None).

Inside a sparse layer the mask is kept: only the *active* incoming weights are redrawn and
masked weights stay exactly 0, so a recycle never changes a mask or the active count. The
fresh weights come from the run's own initialiser (`init.init_kernels`: the network's
initialiser on full fans, the sparsity-aware one on the current mask's fans for a layer that
was sparse from the start, the narrower network's for param-matched dense); Dopamine draws
from the network's Glorot initialiser, which is this project's CNNs' own. Units that
param-matched dense removes are never dormant, so never recycled.

A flatten after a conv feeds the dense layer position-major, channel fastest (NHWC), so a
recycled channel's outgoing rows are every `units`-th row (`jnp.tile`); Dopamine's
`mask_creator` repeats each channel's entry over consecutive rows (`jnp.repeat`), which for
this layout selects other channels' rows.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .hparams import SparseHParams
from .init import init_kernels
from .spec import SparseSpec
from .updaters import reset_moments


def recyclable_layers(spec: SparseSpec, module=None) -> tuple[int, ...]:
    """Kernels (forward order) whose units ReDo may recycle: `module.recyclable_layers()` when
    the module says (a residual network: only layers whose output feeds the next kernel
    alone), else every hidden layer. Each must feed the next kernel directly or through a
    flatten (`spec.in_repeat` known)."""
    hidden = range(spec.num_layers - 1)
    layers = tuple(module.recyclable_layers()) if hasattr(module, "recyclable_layers") else tuple(hidden)
    for l in layers:
        if l not in hidden or spec.in_repeat[l + 1] < 1:
            raise ValueError(f"ReDo cannot recycle layer {l} ({spec.names[l]}): it must be a hidden layer "
                             f"whose units the next kernel reads")
    return layers


def is_recycle_step(step, every) -> jnp.ndarray:
    """Whether ReDo recycles after the optimizer step at counter `step` (steps done before it):
    step > 0 and a multiple of `every`; never when every is 0. As Dopamine's
    `is_update_iter(step) = step > 0 and step % reset_period == 0` on its gradient-step index."""
    return (every > 0) & (step > 0) & (step % jnp.maximum(every, 1) == 0)


def _outgoing(spec: SparseSpec, l: int, dead: jnp.ndarray) -> jnp.ndarray:
    """Entries of kernel l + 1 that read layer l's units in `dead` (rows; a flatten tiles them)."""
    rows = jnp.tile(dead, spec.in_repeat[l + 1])
    return jnp.broadcast_to(rows[:, None], spec.shapes[l + 1])


@functools.partial(jax.jit, static_argnames=("spec", "layers"))
def recycle_dormant(key: jax.Array, spec: SparseSpec, hp: SparseHParams, params, masks, opt_state,
                    dead, layers: tuple[int, ...]):
    """Recycle the units in `dead` (per hidden layer, [units] bool) of the kernels in `layers`.

    params: masked params; masks: the run's masks (unchanged); opt_state: the wrapped
    optimizer's state (Adam's mu and nu are params-shaped buffers). Returns (params,
    opt_state). Incoming weights are redrawn first and outgoing ones zeroed after, so when two
    consecutive layers both recycle, the weights between their dormant units end at 0 (as
    Dopamine applies its incoming, then its outgoing masks).
    """
    fresh = init_kernels(key, spec, masks, hp)  # already masked: masked entries stay 0
    kernels = spec.kernel_leaves(params)
    touched = [jnp.zeros(shape, bool) for shape in spec.shapes]
    for l in layers:
        incoming = jnp.broadcast_to(dead[l], spec.shapes[l])
        kernels[l] = jnp.where(incoming, fresh[l], kernels[l])
        touched[l] = touched[l] | incoming
    for l in layers:
        outgoing = _outgoing(spec, l, dead[l])
        kernels[l + 1] = jnp.where(outgoing, 0.0, kernels[l + 1])
        touched[l + 1] = touched[l + 1] | outgoing
    leaves = spec.flatten(spec.replace_kernels(params, kernels))
    for l in layers:
        if spec.biases[l] >= 0:
            leaves[spec.biases[l]] = jnp.where(dead[l], 0.0, leaves[spec.biases[l]])
    keep = spec.replace_kernels(jax.tree.map(lambda m: jnp.ones(m.shape, bool), masks), [~t for t in touched])
    return spec.unflatten(leaves), reset_moments(opt_state, keep)
