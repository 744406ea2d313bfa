"""Each loss, last activation and target encoding at work: which pairings are unsound, a variant's
head on K classes, and the torch modules (imported only when called, about 1 s a process). Their
names and what each takes are the vocabulary's (core/vocabulary.py), which params validate against.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.vocabulary import LOSSES, TARGET_ENCODINGS

# What each last activation produces, to compare with what the loss wants.
_PRODUCES = {
    "none": "logits",
    "ReLU": "non-negative scores",
    "Sigmoid": "probabilities",
    "Tanh": "values in (-1, 1)",
    "Softmax": "probabilities",
    "LogSoftmax": "log_probabilities",
}


def mismatch(loss: str, last_activation: str) -> str | None:
    """Why this pairing is wrong before any training, or None when it is sound."""
    wants = LOSSES[loss].wants
    produces = _PRODUCES[last_activation]
    if wants == "log_probabilities" and produces != "log_probabilities":
        why = f"{loss} expects log-probabilities but the last activation {last_activation} gives {produces}"
        if last_activation == "ReLU":
            why += ("; outputs >= 0 without an upper limit make the loss (-output of the target class) "
                    "unbounded below, so training drives it towards minus infinity")
        return why + "; use LogSoftmax"
    if wants == "logits" and produces in ("probabilities", "log_probabilities"):
        return (f"{loss} applies its own (log-)softmax or sigmoid to raw logits, but the last "
                f"activation {last_activation} already gives {produces}; use none")
    return None


@dataclass(frozen=True)
class Head:
    """A variant's last layer and targets on a dataset of `classes` classes."""
    encoding: str
    outputs: int
    last_activation: str


# What a one-output activation becomes over K outputs: Sigmoid's probability of the second class
# is Softmax's distribution over two; the others act elementwise and stay.
_OVER_K = {"Sigmoid": "Softmax"}


def head(loss: str, encoding: str, last_activation: str, classes: int) -> Head | str:
    """The variant as written on two classes; on K > 2, index and one-hot targets take K outputs,
    and a 0/1 float target (one output) becomes one-hot on K outputs, Sigmoid becoming Softmax
    (L1 and MSE then regress the class distribution; BCEWithLogits is one-vs-rest). Returns the
    reason instead when the loss cannot go there (reported n/a, never skipped)."""
    if classes == 2:
        return Head(encoding, TARGET_ENCODINGS[encoding], last_activation)
    if encoding == "float":
        if "onehot" not in LOSSES[loss].encodings:
            return (f"{loss} takes one 0/1 float output, which cannot tell {classes} classes apart, "
                    f"and no one-hot targets")
        return Head("onehot", classes, _OVER_K.get(last_activation, last_activation))
    return Head(encoding, classes, last_activation)


def make_loss(name: str):
    """The loss of one model: (rows, outputs) against its targets, a scalar."""
    import torch.nn as nn

    if name == "KLDivLoss":
        # 'batchmean' is the mathematically correct KL reduction (the seed's choice too).
        return nn.KLDivLoss(reduction="batchmean")
    if name == "CosineEmbeddingLoss":
        cosine = nn.CosineEmbeddingLoss()

        # Pulls the output vector towards its one-hot target (y = 1 for every pair).
        def loss(outputs, targets):
            return cosine(outputs, targets, outputs.new_ones(outputs.shape[0]))

        return loss
    return getattr(nn, name)()


def replica_loss(name: str):
    """The same loss for a stack of replicas: (replicas, rows, outputs) -> one value per replica,
    each reduced over its own rows exactly as make_loss reduces one model's."""
    import torch.nn as nn

    if name == "CosineEmbeddingLoss":
        cosine = nn.CosineEmbeddingLoss(reduction="none")

        def elementwise(outputs, targets):
            return cosine(outputs, targets, outputs.new_ones(outputs.shape[0]))
    else:
        elementwise = getattr(nn, name)(reduction="none")
    batchmean = name == "KLDivLoss"  # the sum over a replica's elements, divided by its rows

    def loss(outputs, targets):
        replicas, rows = outputs.shape[:2]
        values = elementwise(outputs.flatten(0, 1), targets.flatten(0, 1)).view(replicas, -1)
        return values.sum(dim=1) / rows if batchmean else values.mean(dim=1)

    return loss


def make_activation(name: str):
    import torch.nn as nn

    if name == "none":
        return None
    if name in ("Softmax", "LogSoftmax"):
        return getattr(nn, name)(dim=-1)  # over the classes, for one model or a stack of replicas
    return getattr(nn, name)()


def encode_targets(labels, encoding: str, classes: int = 2):
    """Class labels (int64, one per row, with any leading replica axis) as the tensor the loss wants."""
    import torch

    if encoding == "float":
        return labels.to(torch.float32).unsqueeze(-1)
    if encoding == "index":
        return labels.to(torch.int64)
    if encoding == "onehot":
        return torch.nn.functional.one_hot(labels.to(torch.int64), num_classes=classes).to(torch.float32)
    raise ValueError(encoding)


def predict(outputs, last_activation: str):
    """Predicted class per row (the last axis holds the outputs): argmax of several, or a threshold on one."""
    if outputs.shape[-1] > 1:
        return outputs.argmax(dim=-1)
    # A single output is a probability after Sigmoid, otherwise a logit-like score.
    threshold = 0.5 if last_activation == "Sigmoid" else 0.0
    return (outputs[..., 0] >= threshold).long()
