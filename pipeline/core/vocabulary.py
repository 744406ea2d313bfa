"""The vocabulary: the losses, last activations and target encodings a variant can name (torch's
class names, as the seed notebook uses them) and what each loss takes. Plain data, so that params
validate without importing torch; what each does lives in study/losses.py.
"""
from __future__ import annotations

from dataclasses import dataclass

# How the class labels are handed to the loss, and the outputs that takes on two classes (a
# variant is written for two, the notebook's Titanic; `head` says what it becomes on K).
TARGET_ENCODINGS = {
    "float": 1,   # a float column of 0.0/1.0, shape (n, 1): the regression losses
    "index": 2,   # class indices, shape (n,): NLLLoss, CrossEntropyLoss
    "onehot": 2,  # one row per class, shape (n, K): KLDivLoss, CosineEmbeddingLoss
}

LAST_ACTIVATIONS = ("none", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax")


@dataclass(frozen=True)
class LossSpec:
    family: str                  # short name for MLflow tags: nll, kldiv, ...
    encodings: tuple[str, ...]   # target encodings the loss accepts
    wants: str                   # what the loss expects as input: any, log_probabilities, logits
    lower_bound: float = 0.0     # the least value the loss can take on valid input


LOSSES = {
    "L1Loss": LossSpec("l1", ("float", "onehot"), "any"),
    "MSELoss": LossSpec("mse", ("float", "onehot"), "any"),
    "NLLLoss": LossSpec("nll", ("index",), "log_probabilities"),
    "CrossEntropyLoss": LossSpec("cross_entropy", ("index", "onehot"), "logits"),
    "KLDivLoss": LossSpec("kldiv", ("onehot",), "log_probabilities"),
    "BCEWithLogitsLoss": LossSpec("bce", ("float", "onehot"), "logits"),
    "CosineEmbeddingLoss": LossSpec("cosine_embedding", ("onehot",), "any"),
}


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
