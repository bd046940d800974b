"""purejaxsparse: sparse training for deep RL as one jit-compiled, vmapped JAX program.

    train = make_train(config)                     # pure: train(key, hparams) -> (state, metrics)
    hps = stack_hparams([train.hparams(method=m, sparsity=0.9) for m in ("dense", "rigl")])
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)

The names below are imported on first use (PEP 562), so that importing a jax-free submodule
(`purejaxsparse.analysis`, `purejaxsparse.results`) does not load jax.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {"make_train": "train", "make_hparams": "train", "Train": "train", "stack_hparams": "fields",
         "ConfigError": "fields", "Method": "sparse.methods", "register_method": "sparse.methods"}
__all__ = ["make_train", "make_hparams", "Train", "stack_hparams", "ConfigError", "Method", "register_method",
           "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs only
    from .fields import ConfigError, stack_hparams
    from .sparse.methods import Method, register_method
    from .train import Train, make_hparams, make_train


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
