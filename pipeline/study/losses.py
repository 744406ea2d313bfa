"""Each loss, last activation and target encoding at work: which pairings are unsound, a variant's
head on K classes, and the torch modules (imported only when called, about 1 s a process). Their
names and what each takes are the vocabulary's (core/vocabulary.py), which params validate against;
a loss of your own (`losses.module:Name`) is imported from the project's root, and tried on a
made-up batch before anything trains (`check`).
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

from ..core.errors import PipelineError, first_line
from ..core.vocabulary import LOSSES, TARGET_ENCODINGS, loss_spec

# What each last activation produces, to compare with what the loss wants.
_PRODUCES = {
    "none": "logits",
    "ReLU": "non-negative scores",
    "Sigmoid": "probabilities",
    "Tanh": "values in (-1, 1)",
    "Softmax": "probabilities",
    "LogSoftmax": "log_probabilities",
}


def mismatch(loss: str, last_activation: str, wants: str | None = None) -> str | None:
    """Why this pairing is wrong before any training, or None when it is sound."""
    wants = loss_spec(loss, wants).wants
    produces = _PRODUCES[last_activation]
    if wants == "log_probabilities" and produces != "log_probabilities":
        why = f"{loss} expects log-probabilities but the last activation {last_activation} gives {produces}"
        if last_activation == "ReLU":
            why += ("; outputs >= 0 without an upper limit make the loss (-output of the target class) "
                    "unbounded below, so training drives it towards minus infinity")
        return why + "; use LogSoftmax"
    if wants == "logits" and produces in ("probabilities", "log_probabilities"):
        return (f"{loss} reads raw logits (applying its own softmax, sigmoid or margin), but the last "
                f"activation {last_activation} already gives {produces}; use none")
    if wants == "probabilities" and produces != "probabilities":
        return (f"{loss} expects probabilities but the last activation {last_activation} gives {produces}; "
                f"use Softmax (Sigmoid on one output)")
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


def head(loss: str, encoding: str, last_activation: str, classes: int, wants: str | None = None) -> Head | str:
    """The variant as written on two classes; on K > 2, index and one-hot targets take K outputs,
    and a 0/1 float target (one output) becomes one-hot on K outputs, Sigmoid becoming Softmax
    (L1 and MSE then regress the class distribution; BCEWithLogits is one-vs-rest). Returns the
    reason instead when the loss cannot go there (reported n/a, never skipped)."""
    if classes == 2:
        return Head(encoding, TARGET_ENCODINGS[encoding], last_activation)
    if encoding == "float":
        if "onehot" not in loss_spec(loss, wants).encodings:
            return (f"{loss} takes one 0/1 float output, which cannot tell {classes} classes apart, "
                    f"and no one-hot targets")
        return Head("onehot", classes, _OVER_K.get(last_activation, last_activation))
    return Head(encoding, classes, last_activation)


def _arguments(args: dict) -> dict:
    """loss_args as the loss takes them: a list of numbers (a class weight) as a float tensor."""
    import torch

    return {k: torch.tensor(v, dtype=torch.float32) if isinstance(v, tuple) else v for k, v in args.items()}


# ATen's, in cosine_embedding_loss (aten/src/ATen/native/Loss.cpp): added to each squared magnitude.
COSINE_EPSILON = 1e-12


def cosine_to_one(outputs, targets):
    """CosineEmbeddingLoss's value for pairs said to be alike (y = 1): 1 - cos(output, target), a
    value per row, computed as ATen computes it but for the square root. torch's float sqrt on the
    CPU is MKL's vector-math routine: not correctly rounded (it differs from IEEE's in 16% of
    random floats) and, unlike torch's own kernels, not pinned by core/numerics.py, so its last bits
    moved between an Intel and an AMD processor (the default study's cosine_embedding histories,
    the only variant that uses it). rsqrt's kernel is the IEEE square root and a division, the same
    bits on every CPU; the value differs from torch's by at most a few units in the last place."""
    import torch

    product = (outputs * targets).sum(-1)
    magnitudes = ((outputs * outputs).sum(-1) + COSINE_EPSILON) * ((targets * targets).sum(-1) + COSINE_EPSILON)
    return 1 - product * torch.rsqrt(magnitudes)


def make_loss(name: str, args: dict | None = None):
    """The loss of one model: (rows, outputs) against its targets, a scalar (the mean over the rows)."""
    import torch.nn as nn

    args = _arguments(args or {})
    if name not in LOSSES:  # a loss of your own: a class (made with the args) or a function (given them)
        module, _, attribute = name.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        return found(**args) if isinstance(found, type) else functools.partial(found, **args)
    if name == "KLDivLoss":
        # 'batchmean' is the mathematically correct KL reduction (the seed's choice too).
        return nn.KLDivLoss(reduction="batchmean", **args)
    if name == "CosineEmbeddingLoss":
        # Pulls the output vector towards its one-hot target (y = 1 for every pair, so its margin,
        # which only negative pairs meet, plays no part); torch's module checks the arguments.
        reduction = nn.CosineEmbeddingLoss(**args).reduction

        def loss(outputs, targets):
            values = cosine_to_one(outputs, targets)
            return values.mean() if reduction == "mean" else values.sum() if reduction == "sum" else values

        return loss
    return getattr(nn, name)(**args)


def replica_loss(name: str, args: dict | None = None):
    """The same loss for a stack of replicas: (replicas, rows, outputs) -> one value per replica,
    each reduced over its own rows exactly as make_loss reduces one model's. A torch loss as
    written (no arguments) is reduced by hand from its elementwise values; one with arguments (a
    class weight makes the mean a weighted one) or of your own is make_loss's, vectorised over
    the replicas by torch.func.vmap."""
    import torch
    import torch.nn as nn

    if args or name not in LOSSES:
        return torch.func.vmap(make_loss(name, args))
    if name == "CosineEmbeddingLoss":
        elementwise = cosine_to_one
    else:
        elementwise = getattr(nn, name)(reduction="none")
    batchmean = name == "KLDivLoss"  # the sum over a replica's elements, divided by its rows

    def loss(outputs, targets):
        replicas, rows = outputs.shape[:2]
        values = elementwise(outputs.flatten(0, 1), targets.flatten(0, 1)).view(replicas, -1)
        return values.sum(dim=1) / rows if batchmean else values.mean(dim=1)

    return loss


def check(variant, shape: Head, classes: int) -> None:
    """The variant's loss tried on a made-up batch (2 replicas of 4 rows) before anything trains:
    it builds from its arguments, gives one finite value a model, has a gradient, and batched over
    the replicas gives each replica's own value. Each failure is one line naming the variant."""
    import torch

    where = f"variant {variant.name}: loss {variant.loss}"
    if "reduction" in variant.loss_args:
        raise PipelineError(f"{where}: loss_args.reduction: the study reduces each replica's loss to the mean "
                            f"over its rows itself; leave reduction out")
    try:
        one, batched = make_loss(variant.loss, variant.loss_args), replica_loss(variant.loss, variant.loss_args)
    except ModuleNotFoundError as exc:
        raise PipelineError(f"{where}: cannot import it ({first_line(exc)}); a loss of your own is imported "
                            f"from the project's root, {variant.loss.partition(':')[0].replace('.', '/')}.py") from None
    except AttributeError as exc:
        raise PipelineError(f"{where}: {variant.loss.partition(':')[0]} has no {variant.loss.partition(':')[2]} "
                            f"({first_line(exc)})") from None
    except TypeError as exc:
        raise PipelineError(f"{where}: loss_args {dict(variant.loss_args)} refused ({first_line(exc)})") from None
    except Exception as exc:  # a module that raises as it imports, a constructor that refuses a value
        raise PipelineError(f"{where}: building it failed ({first_line(exc)})") from None
    generator = torch.Generator().manual_seed(0)
    raw = torch.randn(2, 4, shape.outputs, generator=generator, requires_grad=True)
    last = make_activation(shape.last_activation)
    outputs = last(raw) if last is not None else raw
    targets = encode_targets(torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]]) % classes, shape.encoding, classes)
    try:
        alone = [one(outputs[r], targets[r]) for r in range(2)]
    except Exception as exc:
        raise PipelineError(f"{where}: failed on a made-up batch (4 rows, {shape.outputs} output(s), "
                            f"{shape.encoding} targets, {classes} classes): {first_line(exc)}") from None
    for value in alone:
        if not isinstance(value, torch.Tensor) or value.shape != ():
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise PipelineError(f"{where}: gave {got} on a batch of 4 rows, not one value (reduce it: the "
                                f"mean over the rows)")
        if not torch.isfinite(value):
            raise PipelineError(f"{where}: gave {value.item()} on a made-up batch of finite outputs")
    if not alone[0].requires_grad:
        raise PipelineError(f"{where}: its value has no gradient with respect to the outputs (computed "
                            f"outside torch, or detached)")
    try:
        together = batched(outputs, targets)
    except Exception as exc:
        raise PipelineError(f"{where}: cannot be batched over replicas with torch.func.vmap "
                            f"({first_line(exc)})") from None
    expected = torch.stack(alone).detach()
    if together.shape != (2,) or not torch.allclose(together.detach(), expected, rtol=1e-5, atol=1e-6):
        raise PipelineError(f"{where}: batched over 2 replicas it gave {together.detach().tolist()}, each "
                            f"alone {expected.tolist()}")


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
