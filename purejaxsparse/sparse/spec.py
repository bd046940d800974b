"""Static description of a network's sparsifiable layers (`SparseSpec`).

A spec is built once from a params tree (shapes only) and closed over by jitted code: it says
which leaves are kernels (sparsified), which are biases (a bias mask: on/off and, for
param-matched dense, per unit), and which are other leaves (never sparsified; all-ones mask).
Kernels are kept in forward order: natural sort of their path, so name layers so that this
order is the forward order (`layer_0`, `layer_1`, ..., `layer_10`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

import jax

KERNEL, BIAS, OTHER = "kernel", "bias", "other"


@dataclasses.dataclass(frozen=True)
class InitSpec:
    """Variance-scaling initialiser of one kernel: std or limit from scale / fan (mode).

    mode: 'fan_in' | 'fan_out' | 'fan_avg' | 'none' (no fan: variance = scale, e.g. Keras'
    RandomUniform(-a, a) is InitSpec(a**2 / 3, 'none', 'uniform')); distribution: 'uniform' |
    'normal' | 'truncated_normal' (flax/keras conventions). With masked fans it gives the init the
    narrower (param-matched) network would get.
    """

    scale: float = 1.0
    mode: str = "fan_avg"
    distribution: str = "uniform"

    def __post_init__(self):
        if self.mode not in ("fan_in", "fan_out", "fan_avg", "none"):
            raise ValueError(f"InitSpec.mode {self.mode!r}; allowed: fan_in, fan_out, fan_avg, none")
        if self.distribution not in ("uniform", "normal", "truncated_normal"):
            raise ValueError(
                f"InitSpec.distribution {self.distribution!r}; allowed: uniform, normal, truncated_normal")


GLOROT_UNIFORM = InitSpec(1.0, "fan_avg", "uniform")
HE_TRUNCATED_NORMAL = InitSpec(2.0, "fan_in", "truncated_normal")
SPARSITY_AWARE = GLOROT_UNIFORM  # U(+-sqrt(3 / fan_avg)) with masked fans (docs/reference.md)


def uniform_init(limit: float) -> InitSpec:
    """U(-limit, limit) whatever the fans (Keras' RandomUniform)."""
    return InitSpec(limit * limit / 3.0, "none", "uniform")


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


@dataclasses.dataclass(frozen=True)
class SparseSpec:
    """Which leaves of a params tree are sparse layers, in forward order.

    treedef: structure of the params tree; kinds: per flat leaf, KERNEL/BIAS/OTHER;
    leaf_shapes: per flat leaf; kernels: flat-leaf index of each kernel, forward order;
    biases: per kernel, flat-leaf index of its sibling bias or -1; names: kernel paths;
    inits: per kernel InitSpec; in_repeat: per kernel, 0 when its input is the network input,
    else how many times the previous kernel's units repeat along its fan-in (1 for a direct
    connection, H*W for a flatten after a conv), -1 when unknown (breaks `dense_width`).
    """

    treedef: Any
    kinds: tuple[str, ...]
    leaf_shapes: tuple[tuple[int, ...], ...]
    kernels: tuple[int, ...]
    biases: tuple[int, ...]
    names: tuple[str, ...]
    inits: tuple[InitSpec, ...]
    in_repeat: tuple[int, ...]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Kernel shapes in forward order."""
        return tuple(self.leaf_shapes[i] for i in self.kernels)

    @property
    def num_layers(self) -> int:
        return len(self.kernels)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def num_kernel_params(self) -> int:
        return sum(self.sizes)

    @property
    def num_params(self) -> int:
        return sum(math.prod(s) for s in self.leaf_shapes)

    @classmethod
    def from_params(cls, params, inits: InitSpec | Sequence[InitSpec] | dict | None = None,
                    exclude: Sequence[str] = ()) -> "SparseSpec":
        """Build a spec from a params tree (arrays or ShapeDtypeStructs).

        A leaf named 'kernel' with >= 2 dims is a sparse layer unless its path contains one of
        `exclude`; a leaf named 'bias' is a bias. inits: one InitSpec for all kernels, a
        sequence (forward order), or a dict from a path substring to InitSpec (first match;
        unmatched kernels get Glorot uniform).
        """
        flat, treedef = jax.tree_util.tree_flatten_with_path(params)
        paths = [_path_str(p) for p, _ in flat]
        shapes = tuple(tuple(int(d) for d in leaf.shape) for _, leaf in flat)
        kinds = []
        for path, shape in zip(paths, shapes):
            name = path.rsplit("/", 1)[-1]
            excluded = any(e in path for e in exclude)
            if name == "kernel" and len(shape) >= 2 and not excluded:
                kinds.append(KERNEL)
            elif name == "bias" and not excluded:
                kinds.append(BIAS)
            else:
                kinds.append(OTHER)
        kernels = sorted((i for i, k in enumerate(kinds) if k == KERNEL), key=lambda i: _natural_key(paths[i]))
        if not kernels:
            raise ValueError("params tree has no 'kernel' leaf to sparsify")
        parent = {paths[i].rsplit("/", 1)[0]: i for i, k in enumerate(kinds) if k == BIAS}
        biases = tuple(parent.get(paths[i].rsplit("/", 1)[0], -1) for i in kernels)
        names = tuple(paths[i] for i in kernels)
        k_shapes = [shapes[i] for i in kernels]
        return cls(
            treedef=treedef,
            kinds=tuple(kinds),
            leaf_shapes=shapes,
            kernels=tuple(kernels),
            biases=biases,
            names=names,
            inits=_resolve_inits(inits, names),
            in_repeat=_chain(k_shapes),
        )

    # -- flat <-> tree helpers -------------------------------------------------------------
    def flatten(self, tree) -> list:
        leaves = self.treedef.flatten_up_to(tree)
        return list(leaves)

    def unflatten(self, leaves) -> Any:
        return self.treedef.unflatten(list(leaves))

    def kernel_leaves(self, tree) -> list:
        leaves = self.flatten(tree)
        return [leaves[i] for i in self.kernels]

    def replace_kernels(self, tree, new_kernels) -> Any:
        leaves = self.flatten(tree)
        for i, k in zip(self.kernels, new_kernels):
            leaves[i] = k
        return self.unflatten(leaves)


def _resolve_inits(inits, names) -> tuple[InitSpec, ...]:
    if inits is None:
        return tuple(GLOROT_UNIFORM for _ in names)
    if isinstance(inits, InitSpec):
        return tuple(inits for _ in names)
    if isinstance(inits, dict):
        out = []
        for n in names:
            match = next((v for k, v in inits.items() if k in n), GLOROT_UNIFORM)
            out.append(match)
        return tuple(out)
    inits = tuple(inits)
    if len(inits) != len(names):
        raise ValueError(f"got {len(inits)} InitSpecs for {len(names)} kernels")
    return inits


def _chain(shapes) -> tuple[int, ...]:
    """How each kernel's fan-in relates to the previous kernel's units (see SparseSpec)."""
    out = [0]
    for prev, cur in zip(shapes[:-1], shapes[1:]):
        units, fan_in = prev[-1], cur[-2]
        out.append(fan_in // units if fan_in % units == 0 else -1)
    return tuple(out)
