"""purejaxsparse: sparse training for deep RL as one jit-compiled, vmapped JAX program.

    train = make_train(config)                     # pure: train(key, hparams) -> (state, metrics)
    hps = stack_hparams([make_hparams(config, method=m, sparsity=0.9) for m in ("dense", "rigl")])
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
"""

from .hparams import ConfigError, stack_hparams
from .train import make_hparams, make_train

__version__ = "0.1.0"
__all__ = ["make_train", "make_hparams", "stack_hparams", "ConfigError", "__version__"]
