"""Masks: exact-count selection with a traced k, initial masks, param-matched width masks.

A mask tree has exactly the structure of the params tree, boolean leaves: kernels carry the
sparse pattern, biases carry use_bias (and the unit pattern of param-matched dense), other
leaves are all ones.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .distributions import active_counts, layer_sparsities
from .hparams import DELAY_UPDATES, SparseHParams
from .methods import jit_with_registry, per_method
from .spec import BIAS, SparseSpec


def top_k_mask(score: jnp.ndarray, k) -> jnp.ndarray:
    """Boolean mask of the k highest scores, k possibly traced; exactly k entries are True.

    Rank-based: a stable descending sort breaks ties by flat index (lower index wins), so the
    result is deterministic. NaN scores rank lowest.
    """
    flat = jnp.nan_to_num(score.reshape(-1).astype(jnp.float32), nan=-jnp.inf)
    order = jnp.argsort(flat, descending=True, stable=True)
    chosen = jnp.arange(flat.size) < k
    return jnp.zeros(flat.size, bool).at[order].set(chosen).reshape(score.shape)


def starts_sparse(hp: SparseHParams) -> jnp.ndarray:
    """Whether the run's method declares a sparse initial mask (init 'sparse': static, SET,
    RigL), whether or not it trains dense until a cut at `start` first."""
    return per_method(hp.method, lambda m: m.init == "sparse")


def is_width(hp: SparseHParams) -> jnp.ndarray:
    """Whether the run's method is param-matched dense (init 'width': dense_width)."""
    return per_method(hp.method, lambda m: m.init == "width")


def ends_sparse(hp: SparseHParams) -> jnp.ndarray:
    """Whether the run ends with every layer at its target count (`Method.ends_sparse`)."""
    return per_method(hp.method, lambda m: m.ends_sparse)


def sparse_from_scratch(hp: SparseHParams) -> jnp.ndarray:
    """True when the run's initial mask is already sparse: a sparse start (static/SET/RigL),
    unless it trains dense until a cut at `start` (start > 0 with start_mode dense_then_cut)."""
    dense_first = (hp.start > 0) & (hp.start_mode != DELAY_UPDATES)
    return starts_sparse(hp) & ~dense_first


# -- param-matched dense: whole hidden units masked --------------------------------------------

def _units(n: int, width) -> jnp.ndarray:
    """Units kept in a hidden layer of n units at width fraction w: max(1, floor(w * n))."""
    return jnp.maximum(1.0, jnp.floor(width * n))


def width_param_count(spec: SparseSpec, width, use_bias=True) -> jnp.ndarray:
    """Parameters of the network with every hidden layer narrowed to width fraction w:
    kernel weights, plus the biases of the kernels that have one when `use_bias`."""
    total = jnp.float32(0.0)
    last = spec.num_layers - 1
    for l, shape in enumerate(spec.shapes):
        rf = 1
        for d in shape[:-2]:
            rf *= d
        rep = spec.in_repeat[l]
        fan_in = shape[-2] if rep <= 0 else _units(spec.shapes[l - 1][-1], width) * rep
        fan_out = shape[-1] if l == last else _units(shape[-1], width)
        total = total + rf * fan_in * fan_out
        if spec.biases[l] >= 0:
            total = total + jnp.where(use_bias, fan_out, 0.0)
    return total


def bias_param_count(spec: SparseSpec, use_bias=True) -> jnp.ndarray:
    """Bias entries of the full network (those of kernels with a bias; 0 without use_bias)."""
    n = sum(shape[-1] for l, shape in enumerate(spec.shapes) if spec.biases[l] >= 0)
    return jnp.where(use_bias, jnp.float32(n), 0.0)


@functools.partial(jax.jit, static_argnames=("spec", "iters"))
def matched_width(spec: SparseSpec, sparsity, use_bias=True, iters: int = 30) -> jnp.ndarray:
    """Width fraction whose dense parameter count is the largest not above the sparse one's.

    Biases count on both sides, as in the original's `get_total_params` (active kernel weights
    plus every bias): budget (1 - S) * N_kernels + N_biases. Bisection with a fixed number of
    steps, so it traces with a traced sparsity.
    """
    budget = ((1.0 - jnp.asarray(sparsity, jnp.float32)) * spec.num_kernel_params
              + bias_param_count(spec, use_bias))

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        fits = width_param_count(spec, mid, use_bias) <= budget
        return jnp.where(fits, mid, lo), jnp.where(fits, hi, mid)

    lo, _ = jax.lax.fori_loop(0, iters, halve, (jnp.float32(0.0), jnp.float32(1.0)))
    return jnp.where(width_param_count(spec, 1.0, use_bias) <= budget, 1.0, lo)


@jit_with_registry(static_argnames="spec")
def hidden_unit_masks(spec: SparseSpec, hp: SparseHParams) -> list[jnp.ndarray]:
    """Per hidden layer (output of every kernel but the last), which units exist.

    All True except for param-matched dense, which keeps the first units of each layer: the
    same rule on every layer of equal width keeps residual stacks consistent.
    """
    width = matched_width(spec, hp.sparsity, hp.use_bias)
    narrow = is_width(hp)
    out = []
    for shape in spec.shapes[:-1]:
        n = shape[-1]
        out.append(jnp.where(narrow, jnp.arange(n) < _units(n, width), True))
    return out


def _width_kernel_mask(spec: SparseSpec, l: int, units: list[jnp.ndarray]) -> jnp.ndarray:
    shape = spec.shapes[l]
    rep = spec.in_repeat[l]
    fan_in = jnp.ones(shape[-2], bool) if rep <= 0 else jnp.tile(units[l - 1], rep)
    fan_out = jnp.ones(shape[-1], bool) if l == spec.num_layers - 1 else units[l]
    return jnp.broadcast_to(fan_in[:, None] & fan_out[None, :], shape)


# -- initial masks ---------------------------------------------------------------------------

@jit_with_registry(static_argnames="spec")
def init_masks(key: jax.Array, spec: SparseSpec, hp: SparseHParams):
    """Initial mask tree of one run, as its method's `init` declares.

    dense (dense, prune), and sparse starts cut at `start` (dense_then_cut): all ones (dense
    until pruned or cut). Other sparse starts (static/SET/RigL): a uniformly random mask per
    layer with exactly k_l = active_counts(...) entries (ERK/ER/uniform shares of hp.sparsity),
    drawn from `key` (so every seed has its own mask). width (dense_width): whole hidden units
    masked (param-matched). Biases: hp.use_bias, times the unit pattern for width.
    """
    return _masks(key, spec, hp, sparse_from_scratch(hp), is_width(hp))


def _masks(key, spec: SparseSpec, hp: SparseHParams, random_start, narrow):
    """Mask tree with random kernels of the target counts where `random_start`, the
    param-matched unit pattern where `narrow`, else all ones (biases: see `init_masks`)."""
    counts = active_counts(spec.shapes, layer_sparsities(spec.shapes, hp.sparsity, hp.distribution))
    units = hidden_unit_masks(spec, hp)
    leaves = [jnp.ones(s, bool) for s in spec.leaf_shapes]
    for l, i in enumerate(spec.kernels):
        shape = spec.shapes[l]
        scores = jax.random.uniform(jax.random.fold_in(key, l), shape)
        random = top_k_mask(scores, counts[l])
        width = _width_kernel_mask(spec, l, units)
        leaves[i] = jnp.where(narrow, width, jnp.where(random_start, random, True))
        b = spec.biases[l]
        if b >= 0:
            unit = units[l] if l < spec.num_layers - 1 else jnp.ones(shape[-1], bool)
            leaves[b] = jnp.broadcast_to(unit & hp.use_bias, spec.leaf_shapes[b])
    for i, kind in enumerate(spec.kinds):  # biases of no known kernel still follow use_bias
        if kind == BIAS and i not in spec.biases:
            leaves[i] = jnp.broadcast_to(hp.use_bias, spec.leaf_shapes[i])
    return spec.unflatten(leaves)


@jit_with_registry(static_argnames="spec")
def final_active_params(spec: SparseSpec, hp: SparseHParams) -> jnp.ndarray:
    """Active parameter count a run ends with (the rule of which mask each method ends with):
    a method that ends sparse (static, SET, RigL, pruning) ends at exactly k_l weights per
    layer, as a sparse start has them; dense and dense_width at their own masks'."""
    masks = _masks(jax.random.PRNGKey(0), spec, hp, ends_sparse(hp), is_width(hp))
    return sum(jnp.sum(m, dtype=jnp.int32) for m in jax.tree.leaves(masks))


@jit_with_registry(static_argnames="spec")
def empty_layers(spec: SparseSpec, hp: SparseHParams) -> jnp.ndarray:
    """bool [L]: which kernels the run's initial or final mask leaves without an active weight.

    A method that ends sparse starts (or is cut) or ends at exactly k_l weights per layer
    (`init_masks`, `final_active_params`); dense and dense_width keep at least one unit per
    layer. A network with such a layer cuts its input from its output.
    """
    counts = active_counts(spec.shapes, layer_sparsities(spec.shapes, hp.sparsity, hp.distribution))
    return ends_sparse(hp) & (counts == 0)


def apply_masks(params, masks):
    """Zero every masked entry (exact zeros, any dtype)."""
    return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, masks)

