"""The study's replicas: which seed and which train/validation split each one trains on.

Split k is `train_test_split(..., test_size, random_state=seed + k)`, so split 0 is the
notebook's split. Seeds are nested in splits: replica (j, k), the j-th seed on split k, draws its
initial weights and its shuffling from its own seed `seed + j + seeds * k`, so no two replicas
share one and a seed's luck is not common to every split mean (crossed seeds would leave it out
of the test's variance). Replica r is (r // splits, r % splits): replica 0 (params' seed, split 0)
is the canonical run, the notebook's. Every split has the same sizes, which lets the replicas of
a variant train as one batched computation.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Replica(NamedTuple):
    seed: int   # its own random seed, for the initial weights and the shuffling
    split: int


def replicas(seed: int, seeds: int, splits: int) -> list[Replica]:
    """Seeds x splits, seed-major (the report's (seeds, splits) grid): replica 0 is (seed, split 0)."""
    return [Replica(seed + j + seeds * k, k) for j in range(seeds) for k in range(splits)]


def make_splits(rows: int, test_size: float, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of each split: (count, train rows) and (count, validation rows)."""
    from sklearn.model_selection import train_test_split

    pairs = [train_test_split(np.arange(rows), test_size=test_size, random_state=seed + k) for k in range(count)]
    return np.stack([train for train, _ in pairs]), np.stack([val for _, val in pairs])


def scaler(prepared: dict, k: int) -> dict[str, list[float]]:
    """Split k's training part's mean and (population) standard deviation, as StandardScaler has them."""
    x_train = prepared["x"][prepared["train_index"][k]]
    scale = x_train.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant, as in StandardScaler
    return {"mean": x_train.mean(axis=0).tolist(), "scale": scale.tolist()}


def split_arrays(prepared: dict, k: int, standardize: bool | dict | None = True) -> dict[str, np.ndarray]:
    """Split k as float32 features and int64 labels: standardized with its own training part's
    `scaler` (True), with a scaler training recorded (a dict), or raw (False or None)."""
    x, y = prepared["x"], prepared["y"]
    train, val = prepared["train_index"][k], prepared["val_index"][k]
    x_train, x_val = x[train], x[val]
    if "onehot" in prepared:
        # The split's encoding is its training rows': a category they never show is unknown to
        # it, a column of zeros in validation too (OneHotEncoder's handle_unknown="ignore").
        unseen = prepared["onehot"] & ~x_train.any(axis=0)
        if unseen.any():
            x_val = x_val.copy()
            x_val[:, unseen] = 0.0
    scaled = scaler(prepared, k) if standardize is True else standardize or None
    if scaled is not None:
        mean, scale = np.array(scaled["mean"]), np.array(scaled["scale"])
        x_train, x_val = (x_train - mean) / scale, (x_val - mean) / scale
    return {"x_train": x_train.astype(np.float32), "y_train": y[train],
            "x_val": x_val.astype(np.float32), "y_val": y[val]}
