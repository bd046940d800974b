"""Networks whose layers are named in forward order (layer_0, layer_1, ...), as SparseSpec expects.

Every network's `__call__(x, return_activations=False)` returns the output, or
(output, hidden post-activations) for dormant-neuron measurement.
"""

from .cnn import ImpalaResNet, MinAtarCNN, NatureCNN
from .mlp import MLP
from .width import scaled, scaled_all

__all__ = ["MLP", "NatureCNN", "ImpalaResNet", "MinAtarCNN", "scaled", "scaled_all"]
