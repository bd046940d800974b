"""The width multiplier of a network (`agent_config.width`): every scaled layer gets
`ceil(units * width)` units.

The rule is the one of Dopamine's scalable networks (`int(math.ceil(n * self.width))`,
`dopamine/labs/redo/networks.py`, `_scale_width`); Obando-Ceron et al. 2024 scale networks
by 1, 3 and 5. Which layers a network scales is the network's own (nets/cnn.py says so per
network). Width 1 leaves every network exactly as it is.
"""

from __future__ import annotations

import math
from typing import Sequence


def scaled(units: int, width: float) -> int:
    """Units of a layer of `units` at `width`: ceil(units * width), at least 1. The product is
    rounded to 6 decimals first, so that e.g. 100 * 0.07 is 7 units, not 8."""
    return max(1, math.ceil(round(units * width, 6)))


def scaled_all(units: Sequence[int], width: float) -> tuple[int, ...]:
    """`scaled` of every layer of a list of widths (an MLP's `hidden`)."""
    return tuple(scaled(n, width) for n in units)
