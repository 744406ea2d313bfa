"""Focal loss: Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017,
eq. 4: FL(p_t) = -(1 - p_t)^gamma log(p_t), p_t the softmax probability of the true class. It
scales each row's cross-entropy down the better that row is already classified; gamma = 0 is
cross-entropy, and 2 is the paper's choice. (Its alpha-balanced form, eq. 5, is left out: the
paper's alpha offsets a foreground/background imbalance these tables do not have.)"""
import torch
import torch.nn.functional as F


class FocalLoss(torch.nn.Module):
    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return (-((1 - log_p.exp()) ** self.gamma) * log_p).mean()
