"""The tuned study: every variant at the learning rate its own split's training rows choose, so that
a loss is not judged at a learning rate that suits another (docs/study.md, "Each loss at its best").

Nested inside each split k, as the outer test needs (Cawley & Talbot 2010; Bouthillier et al. 2021
count the choice of hyperparameters among the sources of variance to randomise):
  1. split k's training rows are parted again (`inner`, random_state seed + k, inner_share of them
     for an inner validation part); its validation rows are in neither part;
  2. each learning rate of the grid trains the split's first seed on the inner training part (its
     own scaler fitted there), and is judged by its final accuracy on the inner validation part;
  3. `choose` takes the best; a tie goes to the rate nearest the variant's own (on a log scale),
     then to the smaller;
  4. every replica of split k (each of its seeds) trains again at the chosen rate on the split's
     whole training part and is judged on its validation rows, as in the fixed study.
The choice is one per split, not one per replica: its noise (one tuning run per rate) then lands
in the split's mean, which the corrected test already treats as the unit of variance. A replica
whose split chose the variant's own rate is the fixed study's replica: the same seed, rows and
rate train the same bytes, so it is kept, not trained again (train.tuned).
"""
from __future__ import annotations

import math

import numpy as np


def inner(prepared: dict, seed: int, share: float) -> dict:
    """`prepared` with each split's training rows parted into an inner training part and an inner
    validation part (train_test_split, random_state seed + k): the study's own code then trains
    and judges on them as on a split (splits.split_arrays). The outer validation rows are in
    neither part, so nothing chosen here has seen them."""
    from sklearn.model_selection import train_test_split

    parts = [train_test_split(rows, test_size=share, random_state=seed + k)
             for k, rows in enumerate(prepared["train_index"])]
    return {**prepared, "train_index": np.stack([train for train, _ in parts]),
            "val_index": np.stack([val for _, val in parts])}


def choose(accuracy: np.ndarray, grid: tuple[float, ...], own: float) -> list[float]:
    """Per split (a column of `accuracy`, shaped (grid, splits)), the rate of the best final inner
    validation accuracy; a tuning run that broke (NaN) is never chosen; ties go to the rate
    nearest `own` on a log scale, then to the smaller; a split where every rate broke keeps `own`."""
    chosen = []
    for column in np.asarray(accuracy, dtype=float).T:
        # Distances rounded: 0.001 and 0.1 are equally far from 0.01, whatever the last bits say.
        finite = [(value, -round(abs(math.log(rate / own)), 9), -rate) for value, rate in zip(column, grid)
                  if math.isfinite(value)]
        chosen.append(-max(finite)[2] if finite else own)
    return chosen
