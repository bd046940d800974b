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

MAX_UNITS = 2**31 - 1
"""The most units a layer may have: the program counts units and weights in int32."""


def scaled(units: int, width: float) -> int:
    """Units of a layer of `units` at `width`: ceil(units * width), at least 1. The product is
    rounded to 6 decimals first, so that e.g. 100 * 0.07 is 7 units, not 8. ValueError for a
    layer of more units than an int32 counts (the program counts units and weights in int32)."""
    product = units * width
    if not product <= MAX_UNITS:  # also inf and nan
        raise ValueError(f"agent_config.width {width:g} makes a layer of {units} units {product:.3g} units wide; "
                         f"allowed: at most {MAX_UNITS:,} units")
    return max(1, math.ceil(round(product, 6)))


def scaled_all(units: Sequence[int], width: float) -> tuple[int, ...]:
    """`scaled` of every layer of a list of widths (an MLP's `hidden`)."""
    return tuple(scaled(n, width) for n in units)
