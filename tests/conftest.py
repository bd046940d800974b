"""Shared fixtures: tiny networks so every test compiles and runs in seconds on 2 CPU cores."""

import jax
import jax.numpy as jnp
import pytest

from purejaxsparse.nets import MLP
from purejaxsparse.sparse import SparseSpec


@pytest.fixture(scope="session")
def tiny_mlp():
    """(module, params, spec) of a 6 -> 32 -> 32 -> 3 ReLU MLP."""
    net = MLP(hidden=(32, 32), out_dim=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
    return net, params, SparseSpec.from_params(params)
