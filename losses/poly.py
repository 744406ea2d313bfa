"""Poly-1: Leng, Xu, Tan, Ni, Li, Liu, Ba & Lu, "PolyLoss: A Polynomial Expansion Perspective of
Classification Loss Functions", ICLR 2022, eq. 3: L = -log(P_t) + epsilon (1 - P_t), P_t the
softmax probability of the true class: cross-entropy with its first polynomial coefficient raised
by epsilon (1 is the paper's default; epsilon = 0 is cross-entropy)."""
import torch
import torch.nn.functional as F


class Poly1Loss(torch.nn.Module):
    def __init__(self, epsilon: float = 1.0):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return (-log_p + self.epsilon * (1 - log_p.exp())).mean()
