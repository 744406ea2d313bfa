"""Squentropy: Hui, Belkin & Wright, "Cut your Losses with Squentropy", ICML 2023, eq. 1:
cross-entropy plus the average square of the incorrect classes' logits,
l(x, y) = -log(softmax(f(x))_y) + 1/(C - 1) sum_{j != y} f_j(x)^2, C the number of classes."""
import torch
import torch.nn.functional as F


def squentropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    true = target.unsqueeze(-1)
    cross_entropy = -F.log_softmax(logits, dim=-1).gather(-1, true).squeeze(-1)
    # The squares of every logit but the true class's: all of them, less the true one's.
    others = logits.pow(2).sum(dim=-1) - logits.gather(-1, true).squeeze(-1).pow(2)
    return (cross_entropy + others / (logits.shape[-1] - 1)).mean()
