"""The seed's SimpleMLP, built as a plain nn.Sequential.

A plain Sequential of torch layers pickles without any of this package's code, so the
model logged to MLflow loads back anywhere torch is installed.
"""
from __future__ import annotations

import torch.nn as nn

from .losses import make_activation


def layer_sizes(inputs: int, hidden_size: int, hidden_layers: int, outputs: int) -> list[int]:
    return [inputs] + [hidden_size] * hidden_layers + [outputs]


def build_mlp(inputs: int, hidden_size: int, hidden_layers: int, outputs: int,
              last_activation: str) -> nn.Sequential:
    sizes = layer_sizes(inputs, hidden_size, hidden_layers, outputs)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    last = make_activation(last_activation)
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


def weight_penalty(model: nn.Module, penalty: str, strength: float, l1_ratio: float):
    """The seed's regularization section: L1, L2 or elastic net on the weights (not biases)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    l1 = sum(w.abs().sum() for w in weights)
    l2 = sum(w.pow(2).sum() for w in weights)
    share = {"l1": 1.0, "l2": 0.0, "elasticnet": l1_ratio}[penalty]
    return strength * (share * l1 + (1.0 - share) * l2)
