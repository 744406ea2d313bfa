"""The vocabulary: the losses, last activations and target encodings a variant can name (torch's
class names, as the seed notebook uses them) and what each loss takes. Plain data, so that params
validate without importing torch; what each does lives in study/losses.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# How the class labels are handed to the loss, and the outputs that takes on two classes (a
# variant is written for two, the notebook's Titanic; `head` says what it becomes on K).
TARGET_ENCODINGS = {
    "float": 1,   # a float column of 0.0/1.0, shape (n, 1): the regression losses
    "index": 2,   # class indices, shape (n,): NLLLoss, CrossEntropyLoss
    "onehot": 2,  # one row per class, shape (n, K): KLDivLoss, CosineEmbeddingLoss
}

LAST_ACTIVATIONS = ("none", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax")


# What a loss reads its outputs as: what the last activation must give it (study/losses.mismatch), and
# how the outputs become class probabilities for the scores and the served model (study/scores.py).
WANTS = ("logits", "probabilities", "log_probabilities", "any")


@dataclass(frozen=True)
class LossSpec:
    family: str                  # short name for MLflow tags: nll, kldiv, ...
    encodings: tuple[str, ...]   # target encodings the loss accepts
    wants: str                   # one of WANTS
    lower_bound: float | None = 0.0  # the least value the loss can take on valid input (None: not known)
    squashes: str = "softmax"    # what it applies to logits (wants logits): softmax over the classes, or sigmoid


LOSSES = {
    "L1Loss": LossSpec("l1", ("float", "onehot"), "any"),
    "MSELoss": LossSpec("mse", ("float", "onehot"), "any"),
    "HuberLoss": LossSpec("huber", ("float", "onehot"), "any"),
    "SmoothL1Loss": LossSpec("smooth_l1", ("float", "onehot"), "any"),
    "NLLLoss": LossSpec("nll", ("index",), "log_probabilities"),
    "CrossEntropyLoss": LossSpec("cross_entropy", ("index", "onehot"), "logits"),
    "KLDivLoss": LossSpec("kldiv", ("onehot",), "log_probabilities"),
    "BCEWithLogitsLoss": LossSpec("bce", ("float", "onehot"), "logits", squashes="sigmoid"),
    "MultiLabelSoftMarginLoss": LossSpec("multilabel_soft_margin", ("onehot",), "logits", squashes="sigmoid"),
    "MultiMarginLoss": LossSpec("multi_margin", ("index",), "logits"),
    "CosineEmbeddingLoss": LossSpec("cosine_embedding", ("onehot",), "any"),
}

# A loss of your own: `package.module:Name`, a class or a function importable from the project's
# root, in a module under USER_LOSSES (the train stages depend on that folder, dvc.yaml says so).
USER_LOSS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
USER_LOSSES = "losses"


def is_user_loss(loss: str) -> bool:
    return loss not in LOSSES and USER_LOSS.fullmatch(loss) is not None


def loss_spec(loss: str, wants: str | None) -> LossSpec:
    """A torch loss's spec, or a loss of your own's: any target encoding, what `wants` says, no known bound."""
    if loss in LOSSES:
        return LOSSES[loss]
    return LossSpec(loss.rpartition(":")[2], tuple(TARGET_ENCODINGS), wants or "any", lower_bound=None)


# The verdicts: of a variant against the reference on one dataset (statistics/per_dataset.py),
# counted across datasets (statistics/across.py), coloured in the reports, tagged in MLflow.
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent", "inconclusive"
# A difference shown (Holm) is sized by its interval at Holm's level: beyond the margin (better,
# worse); inside it (below the margin: practically nothing, by the study's own margin); reaching
# across it (size unresolved). Only "better" makes a champion.
BETTER_BELOW, WORSE_BELOW = "better, below the margin", "worse, below the margin"
BETTER_UNSIZED, WORSE_UNSIZED = "better, size unresolved", "worse, size unresolved"
REFERENCE, UNTESTED, NOT_APPLICABLE = "reference", "untested", "n/a"
# A variant whose replicas are byte-identical to an earlier one's: "identical to <twin>" in its
# dataset's report (not tested again), counted under those words across datasets.
IDENTICAL = "identical"
# In the order the counts list them when tied.
VERDICTS = (BETTER, WORSE, BETTER_UNSIZED, WORSE_UNSIZED, BETTER_BELOW, WORSE_BELOW, EQUIVALENT, INCONCLUSIVE,
            IDENTICAL, REFERENCE, UNTESTED, NOT_APPLICABLE)


def identical_to(twin: str) -> str:
    return f"{IDENTICAL} to {twin}"


def kind(verdict: str) -> str:
    """The verdict's word among VERDICTS: 'identical to mse' is IDENTICAL; any other text itself."""
    return IDENTICAL if verdict.startswith(identical_to("")) else verdict
