"""The seed's SimpleMLP, built as a plain nn.Sequential, and a stack of them trained as one.

A plain Sequential of torch layers pickles without any of this package's code, so the
model logged to MLflow loads back anywhere torch is installed. The study's replicas share its
architecture: their parameters are stacked along a leading replica axis and every Linear layer
becomes one batched matmul, so 25 replicas cost little more than one.
"""
from __future__ import annotations

import numpy as np
import torch
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


def stack(models: list[nn.Sequential]) -> dict[str, torch.Tensor]:
    """Each model's parameters stacked along a new first axis: leaf tensors of shape
    (replicas, *parameter shape), named as in the Sequential's state dict."""
    params, _ = torch.func.stack_module_state(models)
    return params


# A replica whose loss diverged carries inf and NaN through its products, as torch's would, silently
# (train.py names it); numpy would warn on every step.
def _as_torch():
    return np.errstate(all="ignore")


class StackedLinear(torch.autograd.Function):
    """Each replica's x @ weight.T + bias, (replicas, rows, in) -> (replicas, rows, out), its three
    matrix products in numpy's matmul: a BLAS call per replica, in OpenBLAS's Haswell kernels (the
    same on every AVX2 CPU, pinned by core/numerics.py). torch's own bmm goes to MKL, whose one
    branch that is the same on AMD and Intel (SSE2, MKL_CBWR=COMPATIBLE) took 2.2 to 3.5x as long
    for these shapes (930 against 412 us for 100 replicas of 32 x 64 @ 64 x 64, 2026-12-05):
    the products were two thirds of a training's time."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        with _as_torch():
            out = np.matmul(x.detach().numpy(), weight.detach().numpy().transpose(0, 2, 1))
            out += bias.detach().numpy()[:, None, :]
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        g = grad.contiguous().numpy()
        with _as_torch():
            grad_x = torch.from_numpy(np.matmul(g, weight.detach().numpy())) if ctx.needs_input_grad[0] else None
            grad_weight = torch.from_numpy(np.matmul(g.transpose(0, 2, 1), x.detach().numpy()))
        return grad_x, grad_weight, grad.sum(dim=1)


def stacked_forward(template: nn.Sequential, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(replicas, rows, inputs) -> (replicas, rows, outputs): `template`'s layers with each
    replica's own weights; the activations act elementwise or over the last axis."""
    for i, layer in enumerate(template):
        if isinstance(layer, nn.Linear):
            x = StackedLinear.apply(x.contiguous(), params[f"{i}.weight"], params[f"{i}.bias"])
        else:
            x = layer(x)
    return x


def unstack(params: dict[str, torch.Tensor], replica: int) -> dict[str, torch.Tensor]:
    """One replica's state dict, for a plain build_mlp model."""
    return {name: value[replica].detach().clone() for name, value in params.items()}


def weight_penalty(weights: list[torch.Tensor], penalty: str, strength: float, l1_ratio: float) -> torch.Tensor:
    """The seed's regularization section: L1, L2 or elastic net on the weights (not biases).
    `weights` are the Linear weights of one model, or stacked: one value per replica."""
    l1 = sum(w.abs().sum(dim=(-2, -1)) for w in weights)
    l2 = sum(w.pow(2).sum(dim=(-2, -1)) for w in weights)
    share = {"l1": 1.0, "l2": 0.0, "elasticnet": l1_ratio}[penalty]
    return strength * (share * l1 + (1.0 - share) * l2)
