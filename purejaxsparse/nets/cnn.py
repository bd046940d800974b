"""Convolutional networks of the papers' agents (NHWC inputs; uint8 pixels scaled here).

Shapes follow the original code (google-research/rigl `rigl/rl/dqn_agents.py`): the Nature CNN
uses SAME padding (84x84 -> 21 -> 11 -> 11, a 7744-wide flatten), which sets the dense layer's
size and so the ERK shares; the Impala ResNet's hidden layer has 256 units.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def _scale(x):
    """uint8 pixels to [0, 1] (the original divides by 255 inside the network); floats as they are."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 as Dopamine/rigl build it: conv 32-8-4, 64-4-2, 64-3-1 (SAME), fc 512."""

    out_dim: int
    hidden: int = 512

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        x = _scale(x)
        acts = []
        for i, (ch, k, s) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = nn.relu(nn.Conv(ch, (k, k), (s, s), padding="SAME", name=f"layer_{i}")(x))
            acts.append(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, name="layer_3")(x))
        acts.append(x)
        out = nn.Dense(self.out_dim, name="layer_4")(x)
        return (out, tuple(acts)) if return_activations else out


class MinAtarCNN(nn.Module):
    """Young & Tian 2019 (MinAtar): one 3x3 conv of 16 channels (stride 1, VALID), fc 128."""

    out_dim: int
    channels: int = 16
    hidden: int = 128

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        x = nn.relu(nn.Conv(self.channels, (3, 3), padding="VALID", name="layer_0")(_scale(x)))
        acts = [x]
        x = nn.relu(nn.Dense(self.hidden, name="layer_1")(x.reshape(x.shape[0], -1)))
        acts.append(x)
        out = nn.Dense(self.out_dim, name="layer_2")(x)
        return (out, tuple(acts)) if return_activations else out


class ImpalaResNet(nn.Module):
    """Espeholt et al. 2018 encoder, no batch norm: per stack conv3 + maxpool + 2 residual blocks.

    As rigl's `ImpalaNetwork`: stacks of 32/64/64 channels, relu, flatten, fc 256, linear output.
    Layers are numbered in forward order so that all convs of a stack share one width (the
    param-matched baseline keeps the same channels through each residual stack). Activations
    reported for dormant neurons: relu of every conv output and of the fc layer.
    """

    out_dim: int
    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 256

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        x = _scale(x)
        acts, n = [], 0

        def conv(h, ch):
            nonlocal n
            h = nn.Conv(ch, (3, 3), padding="SAME", name=f"layer_{n}")(h)
            n += 1
            acts.append(nn.relu(h))
            return h

        for ch in self.channels:
            x = conv(x, ch)
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            for _ in range(2):
                y = conv(nn.relu(x), ch)
                x = x + conv(nn.relu(y), ch)
        x = nn.relu(x).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, name=f"layer_{n}")(x))
        acts.append(x)
        out = nn.Dense(self.out_dim, name=f"layer_{n + 1}")(x)
        return (out, tuple(acts)) if return_activations else out
