"""Scores beyond accuracy: how good each replica's class probabilities are on its validation rows.

Accuracy is the study's primary, pre-registered score (its verdicts are on it alone); the
champions serve probabilities, so each replica is also scored on them, after its last epoch:

- log-loss, the mean of -log p(true class), with p clipped to [eps, 1] (float64's eps, as
  scikit-learn's `log_loss` clips): a score of exactly 0 for the true class costs -log(eps) = 36
  instead of infinity;
- the Brier score, the mean over rows of sum_k (p_k - [y = k])^2 (Brier 1950, over all classes:
  0 perfect, 2 the worst; on two classes twice scikit-learn's `brier_score_loss`);
- the expected calibration error of Guo et al. ("On Calibration of Modern Neural Networks",
  ICML 2017, eq. 3): the top class's confidence in BINS equal-width bins, (lo, hi] (the first
  [0, hi]), the bins' |accuracy - confidence| weighted by their share of the rows.

A variant's outputs become probabilities by `probability_rule`, the same rule its served model
follows (tracking/served_model.py carries its own copy of `probabilities`: that file travels with
every logged model and imports nothing of the pipeline; tests/test_scores.py holds the two equal).
Everything here is numpy on a leading replica axis: (replicas, rows, classes).
"""
from __future__ import annotations

import numpy as np

from ..core.record import SCORES
from ..core.vocabulary import loss_spec

BINS = 10
EPS = float(np.finfo(np.float64).eps)


def probability_rule(loss: str, last_activation: str, wants: str | None = None) -> str:
    """How a variant's outputs become class probabilities: as its loss reads them first
    (whatever the last layer gave it), then as its last layer made them."""
    spec = loss_spec(loss, wants)
    if spec.wants in ("logits", "log_probabilities"):
        # Logits, or what the loss takes for log-probabilities (a ReLU's scores included): softmax,
        # or the sigmoid a one-vs-rest loss (BCEWithLogits) applies to each output.
        return spec.squashes
    if spec.wants == "probabilities" or last_activation in ("Sigmoid", "Softmax"):
        return "as_is"
    if last_activation == "LogSoftmax":
        return "exp"
    return "clipped"  # scores regressing the targets (L1, MSE, CosineEmbedding on none, ReLU or Tanh)


def probabilities(outputs: np.ndarray, rule: str) -> np.ndarray:
    """(..., rows, outputs) -> (..., rows, classes) float64 probabilities by `rule`; one output
    is the second class's probability."""
    outputs = np.asarray(outputs, dtype=np.float64)
    with np.errstate(over="ignore"):
        if rule == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-outputs))
        elif rule == "softmax":
            shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
            p = shifted / shifted.sum(axis=-1, keepdims=True)
        elif rule == "exp":
            p = np.exp(outputs)
        elif rule == "as_is":
            p = outputs
        elif rule == "clipped":
            p = np.clip(outputs, 0.0, 1.0)
        else:
            raise ValueError(f"no probability rule {rule!r}")
    if p.shape[-1] == 1:
        return np.concatenate([1.0 - p, p], axis=-1)
    total = p.sum(axis=-1, keepdims=True)
    # No class scored above 0 (a dead ReLU): nothing to tell them apart by.
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[-1])


def _true(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.take_along_axis(p, np.asarray(labels)[..., None], axis=-1)[..., 0]


def log_loss(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(_true(p, labels), EPS, 1.0)).mean(axis=-1)


def brier(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    onehot = np.arange(p.shape[-1]) == np.asarray(labels)[..., None]
    return ((p - onehot) ** 2).sum(axis=-1).mean(axis=-1)


def calibration_error(p: np.ndarray, labels: np.ndarray, bins: int = BINS) -> np.ndarray:
    confidence, right = p.max(axis=-1), (p.argmax(axis=-1) == np.asarray(labels)).astype(float)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = np.zeros(confidence.shape[:-1])
    for b in range(bins):
        inside = index == b
        # A bin's rows times |its accuracy - its mean confidence|, as sums over its rows.
        gap += np.abs(np.where(inside, right, 0).sum(axis=-1) - np.where(inside, confidence, 0).sum(axis=-1))
    return gap / confidence.shape[-1]


def scores(p: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The record's SCORES -> one value per leading index (a replica's)."""
    found = {"log_loss": log_loss(p, labels), "brier": brier(p, labels),
             "calibration_error": calibration_error(p, labels)}
    return {name: found[name] for name in SCORES}
