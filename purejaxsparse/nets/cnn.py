"""Convolutional networks of the papers' agents (NHWC inputs; uint8 pixels scaled here).

Shapes follow the original code (google-research/rigl `rigl/rl/dqn_agents.py`): the Nature CNN
uses SAME padding (84x84 -> 21 -> 11 -> 11, a 7744-wide flatten), which sets the dense layer's
size and so the ERK shares; the Impala ResNet's hidden layer has 256 units.

`width` (nets/width.py) scales the Nature and MinAtar CNNs' channels and their dense layer, as
Dopamine's scalable Nature network does (`dopamine/labs/redo/networks.py`), and only the
Impala ResNet's channels, as the Impala of Obando-Ceron et al. 2024 (see ImpalaResNet).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .width import scaled


def _scale(x):
    """uint8 pixels to [0, 1] (the original divides by 255 inside the network); floats as they are."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 as Dopamine/rigl build it: conv 32-8-4, 64-4-2, 64-3-1 (SAME), fc 512."""

    out_dim: int
    hidden: int = 512
    width: float = 1.0  # scales the three convs' channels and `hidden`

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        x = _scale(x)
        acts = []
        for i, (ch, k, s) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = nn.relu(nn.Conv(scaled(ch, self.width), (k, k), (s, s), padding="SAME", name=f"layer_{i}")(x))
            acts.append(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(scaled(self.hidden, self.width), name="layer_3")(x))
        acts.append(x)
        out = nn.Dense(self.out_dim, name="layer_4")(x)
        return (out, tuple(acts)) if return_activations else out


class MinAtarCNN(nn.Module):
    """Young & Tian 2019 (MinAtar): one 3x3 conv of 16 channels (stride 1, VALID), fc 128."""

    out_dim: int
    channels: int = 16
    hidden: int = 128
    width: float = 1.0  # scales `channels` and `hidden`

    @nn.compact
    def __call__(self, x, return_activations: bool = False):
        conv = nn.Conv(scaled(self.channels, self.width), (3, 3), padding="VALID", name="layer_0")
        x = nn.relu(conv(_scale(x)))
        acts = [x]
        x = nn.relu(nn.Dense(scaled(self.hidden, self.width), name="layer_1")(x.reshape(x.shape[0], -1)))
        acts.append(x)
        out = nn.Dense(self.out_dim, name="layer_2")(x)
        return (out, tuple(acts)) if return_activations else out


class ImpalaResNet(nn.Module):
    """Espeholt et al. 2018 encoder, no batch norm: per stack conv3 + maxpool + 2 residual blocks.

    As rigl's `ImpalaNetwork`: stacks of 32/64/64 channels, relu, flatten, fc 256, linear output.
    Layers are numbered in forward order so that all convs of a stack share one width (the
    param-matched baseline keeps the same channels through each residual stack). Activations
    reported for dormant neurons: relu of every conv output and of the fc layer.

    `width` scales every conv's channels but not the fc layer, as the Impala network of
    Obando-Ceron et al. 2024 (their Appendix A points at Dopamine's
    `labs/offline_rl/jax/networks.py`: `ImpalaEncoder` builds each stack with
    `stack_size * nn_scale` channels, the Q-network's `Dense(features=512)` is fixed; so is
    `dopamine/jax/networks.py`'s `ImpalaDQNNetwork`).
    """

    out_dim: int
    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 256
    width: float = 1.0

    def recyclable_layers(self) -> tuple[int, ...]:
        """Kernels whose units ReDo may recycle (sparse/redo.py): the first conv of each
        residual block and the fc layer, whose output feeds only the next kernel. The other
        convs write into the residual stream, which no outgoing kernel can silence (Dopamine
        recycles the same ones: 'Conv_1', 'Conv_3' and 'Dense', weight_recyclers.py)."""
        per_stack = 5  # stack conv, then two blocks of two convs
        blocks = tuple(per_stack * s + b for s in range(len(self.channels)) for b in (1, 3))
        return blocks + (per_stack * len(self.channels),)

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
            ch = scaled(ch, self.width)
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
