"""The contract between train@<dataset> and every stage after it: the training record (typed,
with its save and load) and every replica's history (replicas.csv, its writer and reader).

Readers take attributes (`record.config.training.standardize`), never dig a dict by string.
NaN and infinities are kept as JSON's NaN/Infinity (a replica that broke); the record holds no
wall-clock time, so the same params write the same bytes.
"""
from __future__ import annotations

import hashlib
import json
from typing import Optional

from pydantic import BaseModel, ConfigDict

from .catalog import VariantFiles
from .config import Variant
from .errors import PipelineError

MODEL = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")
HISTORY_KEYS = ("train_loss", "train_penalty", "val_loss", "val_accuracy")


class Epoch(BaseModel):
    model_config = MODEL
    epoch: int
    train_loss: float
    train_penalty: float
    val_loss: float
    val_accuracy: float


class Summary(BaseModel):
    model_config = MODEL
    final_train_loss: float
    final_val_loss: float
    final_val_accuracy: float
    best_val_accuracy: float
    best_epoch: int

    @classmethod
    def of(cls, history: list[Epoch]) -> "Summary":
        best = max(history, key=lambda h: (h.val_accuracy, -h.epoch))
        last = history[-1]
        return cls(final_train_loss=last.train_loss, final_val_loss=last.val_loss,
                   final_val_accuracy=last.val_accuracy, best_val_accuracy=best.val_accuracy, best_epoch=best.epoch)


class Diagnosis(BaseModel):
    model_config = MODEL
    status: str     # ok | stalled | below_lower_bound | diverging | non_finite (diagnosis.py)
    reason: str


class Scores(BaseModel):
    """A replica's class probabilities scored on its validation rows after its last epoch
    (study/scores.py): secondary scores, beside accuracy, the primary one."""
    model_config = MODEL
    log_loss: float
    brier: float
    calibration_error: float


SCORES = tuple(Scores.model_fields)  # their names, in the report's order


class ReplicaResult(BaseModel):
    """One replica: where it trained, its summary and scores (None if its loss turned
    non-finite), its diagnosis."""
    model_config = MODEL
    replica: int
    seed: int
    split: int
    summary: Optional[Summary]
    diagnosis: Diagnosis
    scores: Optional[Scores]
    non_finite_epoch: Optional[int] = None


class Curve(BaseModel):
    """Per epoch over the replicas that stayed finite."""
    model_config = MODEL
    n: list[int]
    mean: list[float]
    sd: list[float]
    min: list[float]
    max: list[float]


class Data(BaseModel):
    model_config = MODEL
    features: list[str]
    train_rows: int
    val_rows: int
    rows_clean: int
    majority_share: float   # of the commonest class: what always guessing it scores
    sha256: str
    encoding: str
    delimiter: str


class Head(BaseModel):
    """What the variant became on this dataset's classes (losses.head)."""
    model_config = MODEL
    encoding: str
    outputs: int
    last_activation: str


class StudyShape(BaseModel):
    model_config = MODEL
    seeds: int
    splits: int
    replicas: int


class Scaler(BaseModel):
    """The canonical split's StandardScaler: what its model expects its inputs scaled by."""
    model_config = MODEL
    mean: list[float]
    scale: list[float]


class Tuned(BaseModel):
    """How the tuned study chose each split's learning rate (study/tuning.py): every value of
    the grid trained on the split's inner training part, judged on its inner validation part."""
    model_config = MODEL
    grid: list[float]
    inner_share: float
    inner_rows: int                     # of the inner validation part, per split
    chosen: list[float]                 # per split, the learning rate its replicas trained at
    inner_accuracy: list[list[float]]   # (grid, splits): the tuning run's final inner validation accuracy


class TrainingRecord(BaseModel):
    model_config = MODEL
    variant: str
    dataset: str
    classes: list[str]                  # the labels' names, in the order of the outputs
    config: Variant                     # as params.yaml writes it (for two classes)
    head: Head                          # as it trained on this dataset
    seed: int
    loss_family: str
    layer_sizes: list[int]
    data: Data
    study: StudyShape
    scaler: Optional[Scaler]            # None: the features were left raw
    warning: Optional[str]              # the loss/activation mismatch, said before training
    replicas: list[ReplicaResult]       # replica 0 is the canonical run
    history: list[Epoch]                # the canonical run's, per epoch
    confusion_matrix: list[list[int]]   # the canonical run's, after the last epoch
    diagnoses: dict[str, int]           # replicas per status, the most common first
    curves: dict[str, Curve]            # train_loss, val_loss, val_accuracy over the replicas
    # Of every replica's validation accuracy at every epoch, byte for byte: two variants that share
    # it made the same predictions throughout (the same function of the logits), so the report
    # counts them as one hypothesis. Their losses may differ in the last bits (KLDiv's reduction).
    predictions_sha256: str
    tuned: Optional[Tuned] = None       # the tuned study's choices; None in the fixed study's record
    loss_code: dict[str, str] = {}      # a loss of your own's module -> its file's sha256 (none for torch's)
    digest: str = ""                    # of everything above and the canonical weights

    @property
    def canonical(self) -> ReplicaResult:
        return self.replicas[0]

    @property
    def summary(self) -> Summary:
        return self.canonical.summary

    @property
    def diagnosis(self) -> Diagnosis:
        return self.canonical.diagnosis

    @property
    def non_finite(self) -> list[ReplicaResult]:
        return [r for r in self.replicas if r.non_finite_epoch]

    def accuracy_grid(self):
        """Final validation accuracy of each replica, shaped (seeds, splits); NaN for non-finite ones."""
        import numpy as np

        values = [r.summary.final_val_accuracy if r.summary else np.nan for r in self.replicas]
        return np.array(values, dtype=float).reshape(self.study.seeds, self.study.splits)

    def score_grid(self, name: str):
        """One of SCORES for each replica, shaped (seeds, splits); NaN for non-finite ones."""
        import numpy as np

        values = [getattr(r.scores, name) if r.scores else np.nan for r in self.replicas]
        return np.array(values, dtype=float).reshape(self.study.seeds, self.study.splits)

    def with_digest(self, weights: bytes) -> "TrainingRecord":
        blob = json.dumps(self.model_copy(update={"digest": ""}).model_dump(mode="json"), sort_keys=True)
        return self.model_copy(update={"digest": hashlib.sha256(blob.encode() + hashlib.sha256(weights).digest())
                                       .hexdigest()})

    def dumps(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, name: str, dataset: str, tuned: bool = False) -> "TrainingRecord":
        """The fixed study's record of the variant on the dataset, or the tuned study's."""
        files = VariantFiles(name, dataset)
        path = files.tuned_record if tuned else files.record
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise PipelineError(f"{path}: not found; run `dvc repro {files.stage}` first") from None
        except ValueError as exc:  # written by another version of the code
            raise PipelineError(f"{path}: not a training record of this version "
                                f"({str(exc).splitlines()[0]}); run `dvc repro {files.stage}`") from None


def dataset_records(params, dataset: str, tuned: bool = False) -> list[TrainingRecord]:
    """Every variant's record on `dataset` (the tuned study's: `tuned`), in params.yaml's order
    (one line if it names no such dataset)."""
    params.dataset(dataset)
    return [TrainingRecord.load(name, dataset, tuned) for name in params.variants]


def replicas_csv(replicas: list, histories: dict) -> str:
    """Every replica's per-epoch history, one row per replica and epoch (repr: exact floats).
    `replicas` are (seed, split) pairs; `histories` HISTORY_KEYS -> arrays (replicas, epochs)."""
    lines = ["replica,seed,split,epoch," + ",".join(HISTORY_KEYS)]
    epochs = histories[HISTORY_KEYS[0]].shape[1]
    for r, (seed, split) in enumerate(replicas):
        for e in range(epochs):
            values = ",".join(repr(float(histories[key][r, e])) for key in HISTORY_KEYS)
            lines.append(f"{r},{seed},{split},{e + 1},{values}")
    return "\n".join(lines) + "\n"


def read_replicas(name: str, dataset: str) -> dict:
    """A variant's replicas.csv as arrays shaped (replicas, epochs), plus each replica's seed and split."""
    import numpy as np

    files = VariantFiles(name, dataset)
    try:
        table = np.genfromtxt(files.replicas, delimiter=",", names=True)
    except FileNotFoundError:
        raise PipelineError(f"{files.replicas}: not found; run `dvc repro {files.stage}` first") from None
    table = np.atleast_1d(table)
    count = int(table["replica"].max()) + 1
    out = {key: table[key].reshape(count, -1) for key in HISTORY_KEYS}
    out["seed"] = table["seed"].reshape(count, -1)[:, 0].astype(int)
    out["split"] = table["split"].reshape(count, -1)[:, 0].astype(int)
    return out
