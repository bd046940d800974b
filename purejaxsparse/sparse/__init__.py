"""Sparse-training core: pure JAX, safe under jit and vmap, method and sparsity traced.

Typical use inside an agent (one run; vmap it for a sweep):

    spec = SparseSpec.from_params(params_shapes, inits=...)
    params, masks = init_sparse(key, spec, params, hp)
    tx = sparse(spec, optax.adam(1e-3))              # an optax transform: masks, count, schedule
    state = with_masks(tx.init(params), masks)
    grads = jax.grad(loss)(params)                   # params are masked: dense gradient
    updates, state = tx.update(grads, state, params, key=key, hparams=hp)
    params = optax.apply_updates(params, updates)    # masked weights stay exactly 0
"""

import jax

from .batching import cond_any
from .distributions import active_counts, layer_sparsities
from .hparams import (DISTRIBUTIONS, METHODS, START_MODES, SparseHParams, distribution_id, method_id,
                      start_mode_id)
from .init import init_kernels, init_params, masked_fans, variance_scaling
from .masks import (apply_masks, empty_layers, final_active_params, hidden_unit_masks, init_masks, matched_width,
                    top_k_mask, width_param_count)
from .optimizer import SparseState, sparse, sparse_adam, sparse_count, sparse_masks, with_masks
from .methods import (BUILT_IN, INITS, SCHEDULES, Method, get_method, gradient_score, jit_with_registry,
                      magnitude_score, method_names, random_score, register_method, registered)
from .measure import active_params, dormant_fraction, dormant_units, existing_entries, gradient_snr
from .redo import is_recycle_step, recyclable_layers, recycle_dormant
from .schedules import cosine_drop_fraction, is_update_step, polynomial_sparsity
from .spec import (GLOROT_UNIFORM, HE_TRUNCATED_NORMAL, SPARSITY_AWARE, InitSpec, SparseSpec, uniform_init)
from .updaters import (apply_mask_update, grown, mask_changes, maybe_update_masks, reset_moments,
                       sparse_updates, update_masks)


@jit_with_registry(static_argnames="spec")
def init_sparse(key, spec: SparseSpec, params, hp: SparseHParams):
    """(params, masks) of one run: initial masks from `key`, kernels re-drawn to match them."""
    k_mask, k_init = jax.random.split(key)
    masks = init_masks(k_mask, spec, hp)
    return init_params(k_init, spec, params, masks, hp), masks


__all__ = [
    "METHODS", "DISTRIBUTIONS", "START_MODES", "SparseHParams", "method_id", "distribution_id",
    "start_mode_id",
    "Method", "register_method", "registered", "method_names", "get_method", "BUILT_IN", "INITS", "SCHEDULES",
    "magnitude_score", "gradient_score", "random_score",
    "layer_sparsities", "active_counts",
    "SparseSpec", "InitSpec", "GLOROT_UNIFORM", "HE_TRUNCATED_NORMAL", "SPARSITY_AWARE", "uniform_init",
    "init_masks", "init_params", "init_kernels", "init_sparse", "variance_scaling", "masked_fans",
    "top_k_mask", "apply_masks", "empty_layers", "final_active_params", "matched_width", "width_param_count",
    "hidden_unit_masks",
    "polynomial_sparsity", "cosine_drop_fraction", "is_update_step",
    "update_masks", "mask_changes", "maybe_update_masks", "apply_mask_update", "grown",
    "reset_moments", "sparse_updates", "cond_any",
    "sparse", "sparse_adam", "SparseState", "with_masks", "sparse_masks", "sparse_count",
    "active_params", "dormant_fraction", "dormant_units", "gradient_snr", "existing_entries",
    "recyclable_layers", "is_recycle_step", "recycle_dormant",
]
