"""The coverage simulation of this very design: do the report's intervals and tests keep their
promises on studies shaped like the study itself?

A population with a known truth (Titanic-like rows: class, sex, age and fare, survival a
logistic function of them with an interaction) gives each simulated study its own sample of
`rows` rows. Each study then runs exactly as a dataset of the study does: `splits` overlapping
train/validation splits of its rows (data/splits.py), `seeds` replicas nested in each split, every
replica trained by the project's own batched trainer (study/train.py) under two variants, and the
report's statistics (per_dataset.py) computed on the final validation accuracies.

The truth is what those intervals are about: the expected accuracy, on fresh rows of the
population, of a model the procedure trains on `n_train` rows (Nadeau and Bengio's target), for
each variant and for their difference; estimated by training on `truth_samples` independent
samples and judging each on `test_rows` fresh rows of its own, with the same seeds for both
variants.

Reported: how often the intervals cover the truth (the mean accuracy, and the paired difference),
as the report computes them and as the Nadeau-Bengio correction of the whole split-means'
variance did before (it stretched the seeds' noise too); and TOST's type-I error where the true
difference is exactly the margin (the difference shifted by a known constant, which keeps the
design's variances). tests/test_coverage.py runs a small design in CI; `python -m
benchmarks.coverage` the study's own (docs/study.md quotes it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..core import config
from ..data.splits import make_splits, replicas
from ..study.train import train
from . import per_dataset

# The two variants each study compares (params.yaml's reference and its square-loss variant).
REFERENCE = {"loss": "CrossEntropyLoss", "last_activation": "none", "target_encoding": "index"}
OTHER = {"loss": "MSELoss", "last_activation": "none", "target_encoding": "onehot"}


@dataclass(frozen=True)
class Design:
    rows: int = 714             # a study's sample: Titanic's clean rows
    share: float = 0.2          # validation share
    splits: int = 20
    seeds: int = 5
    studies: int = 220
    hidden_size: int = 64
    hidden_layers: int = 2
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.001
    margin: float = 0.01
    confidence: float = 0.95
    truth_samples: int = 400    # independent training samples the truth averages over
    test_rows: int = 20_000     # fresh rows each of them is judged on
    chunk: int = 20             # studies trained at once (memory)
    seed: int = 0


def population(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Titanic-like rows: (class, female, age, fare) and survival, drawn independently."""
    pclass = rng.choice([1, 2, 3], rows, p=[0.24, 0.21, 0.55])
    female = (rng.uniform(size=rows) < 0.35).astype(float)
    age = np.clip(rng.normal(30, 14, rows), 0.5, 80)
    fare = rng.lognormal(np.log(np.array([60.0, 20.0, 9.0]))[pclass - 1], 0.6)
    logit = (1.0 - 1.1 * (pclass - 1) + 2.6 * female - 0.03 * (age - 30) + 0.3 * np.log(fare / 20)
             - 1.6 * female * (pclass == 3))
    survived = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return np.column_stack([pclass, female, age, fare]).astype(np.float64), survived


def variant(design: Design, name: str, spec: dict) -> config.Variant:
    training = config.Training(hidden_size=design.hidden_size, hidden_layers=design.hidden_layers,
                               epochs=design.epochs, batch_size=design.batch_size, lr=design.lr)
    return config.Variant(name=name, outputs=None, training=training, **spec)


def _final_accuracy(design: Design, spec: dict, name: str, prepared: dict, layout) -> np.ndarray:
    trained = train(variant(design, name, spec), layout, prepared, progress=False, classes=2)
    return trained.val_accuracy[:, -1]


def study_grids(design: Design, rng: np.random.Generator, studies: int) -> dict[str, np.ndarray]:
    """{variant: (studies, seeds, splits) final validation accuracies} of `studies` simulated
    studies, trained together (their splits are one batch of the trainer)."""
    xs, ys, train_index, val_index = [], [], [], []
    for i in range(studies):
        x, y = population(design.rows, rng)
        tr, va = make_splits(design.rows, design.share, int(rng.integers(2**31)), design.splits)
        xs.append(x)
        ys.append(y)
        train_index.append(tr + i * design.rows)
        val_index.append(va + i * design.rows)
    prepared = {"x": np.concatenate(xs), "y": np.concatenate(ys), "train_index": np.concatenate(train_index),
                "val_index": np.concatenate(val_index)}
    # Seed-major over every study's splits: replica (j, k) is study k // J's split k % J, seed j.
    layout = replicas(int(rng.integers(2**20)), design.seeds, studies * design.splits)
    out = {}
    for name, spec in (("reference", REFERENCE), ("other", OTHER)):
        final = _final_accuracy(design, spec, name, prepared, layout).reshape(design.seeds, studies, design.splits)
        out[name] = final.transpose(1, 0, 2)
    return out


def truth(design: Design, rng: np.random.Generator) -> dict[str, float]:
    """The expected accuracy on fresh rows of a model trained on n_train rows, per variant, and
    their difference (paired: the same samples and seeds)."""
    n_train = make_splits(design.rows, design.share, 0, 1)[0].shape[1]
    # Each sample judged on its own fresh rows: the truth's error averages out over the samples
    # (one shared test set would add its own error, alike, to every study's comparison).
    samples = [population(n_train + design.test_rows, rng) for _ in range(design.truth_samples)]
    size = n_train + design.test_rows
    starts = np.arange(design.truth_samples)[:, None] * size
    prepared = {"x": np.concatenate([x for x, _ in samples]), "y": np.concatenate([y for _, y in samples]),
                "train_index": starts + np.arange(n_train), "val_index": starts + np.arange(n_train, size)}
    layout = replicas(int(rng.integers(2**20)), 1, design.truth_samples)
    found = {name: _final_accuracy(design, spec, name, prepared, layout)
             for name, spec in (("reference", REFERENCE), ("other", OTHER))}
    return {"reference": float(found["reference"].mean()), "other": float(found["other"].mean()),
            "difference": float((found["other"] - found["reference"]).mean()),
            "difference_se": float((found["other"] - found["reference"]).std(ddof=1) / math.sqrt(design.truth_samples))}


def as_built(grid: np.ndarray, test_share: float, confidence: float) -> tuple[float, float]:
    """The interval as the report computed it before: Nadeau-Bengio's factor on the whole of the
    split means' variance, the seeds' noise stretched with the split effects."""
    from statsmodels.stats.weightstats import DescrStatsW

    means = per_dataset.split_means(grid)
    mean = means.mean()
    stats = DescrStatsW(mean + (means - mean) * math.sqrt(1 + len(means) * test_share))
    low, high = stats.tconfint_mean(1 - confidence)
    return float(low), float(high)


@dataclass
class Coverage:
    studies: int = 0
    mean: int = 0                 # the reference's mean accuracy interval covered its truth
    mean_as_built: int = 0
    difference: int = 0           # the paired difference's interval covered the true difference
    difference_as_built: int = 0
    tost_errors: int = 0          # TOST declared equivalence where the true difference is +-margin
    tost_errors_as_built: int = 0
    tost_tries: int = 0
    width: float = 0.0            # the difference intervals' mean width, now and as built
    width_as_built: float = 0.0

    def share(self, field: str) -> float:
        total = self.tost_tries if field.startswith("tost") else self.studies
        return getattr(self, field) / total

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "width": self.width / self.studies,
                "width_as_built": self.width_as_built / self.studies}


def _tost_rejects(differences: np.ndarray, test_share: float, design: Design, seed_aware: bool) -> bool:
    if seed_aware:
        return per_dataset.paired_test(differences, test_share, design.confidence, design.margin)["p_equivalence"] \
            < 1 - design.confidence
    # As built: TOST at level alpha is the (1 - 2 alpha) interval inside +-margin.
    low, high = as_built(differences, test_share, 1 - 2 * (1 - design.confidence))
    return -design.margin < low and high < design.margin


def score(design: Design, grids: dict[str, np.ndarray], known: dict[str, float], into: Coverage) -> Coverage:
    """Add these studies' coverage of the known truth to `into`."""
    n_val = make_splits(design.rows, design.share, 0, 1)[1].shape[1]
    test_share = n_val / (design.rows - n_val)
    for reference, other in zip(grids["reference"], grids["other"]):
        into.studies += 1
        spread = per_dataset.mean_interval(reference, test_share, design.confidence)
        into.mean += spread["ci_low"] <= known["reference"] <= spread["ci_high"]
        low, high = as_built(reference, test_share, design.confidence)
        into.mean_as_built += low <= known["reference"] <= high
        differences = other - reference
        paired = per_dataset.paired_test(differences, test_share, design.confidence, design.margin)
        into.difference += paired["diff_low"] <= known["difference"] <= paired["diff_high"]
        into.width += paired["diff_high"] - paired["diff_low"]
        low, high = as_built(differences, test_share, design.confidence)
        into.difference_as_built += low <= known["difference"] <= high
        into.width_as_built += high - low
        for edge in (design.margin, -design.margin):  # the truth moved to the margin's edge
            shifted = differences + (edge - known["difference"])
            into.tost_tries += 1
            into.tost_errors += _tost_rejects(shifted, test_share, design, seed_aware=True)
            into.tost_errors_as_built += _tost_rejects(shifted, test_share, design, seed_aware=False)
    return into


def simulate(design: Design) -> tuple[Coverage, dict[str, float]]:
    """Every study of the design, in chunks, scored against the truth."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(design.seed)
    known = truth(design, rng)
    found = Coverage()
    for start in range(0, design.studies, design.chunk):
        score(design, study_grids(design, rng, min(design.chunk, design.studies - start)), known, found)
    return found, known
