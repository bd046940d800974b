"""Convolutional networks of the papers' Atari agents (NHWC inputs; uint8 pixels scaled here)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def _scale(x):
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x


class NatureCNN(nn.Module):
    """Mnih et al. 2015: conv 32-8-4, 64-4-2, 64-3-1, fc 512, linear output."""

    out_dim: int
    hidden: int = 512

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        x = _scale(x)
        acts = []
        for i, (ch, k, s) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = nn.relu(nn.Conv(ch, (k, k), (s, s), padding="VALID", name=f"layer_{i}")(x))
            acts.append(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, name="layer_3")(x))
        acts.append(x)
        out = nn.Dense(self.out_dim, name="layer_4")(x)
        return (out, tuple(acts)) if return_activations else out


class ImpalaResNet(nn.Module):
    """Espeholt et al. 2018 encoder, no batch norm: per stack conv3 + maxpool + 2 residual blocks.

    Layers are numbered in forward order so that all convs of a stack share one width (the
    param-matched baseline keeps the same channels through each residual stack). Activations
    reported for dormant neurons: relu of every conv output and of the fc layer.
    """

    out_dim: int
    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 512

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
