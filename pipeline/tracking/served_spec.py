"""What a variant's served model (served_model.py) is told about the rows it takes and the network
behind it, read from the study's own files: the dataset's table as its file has it (column
types, categories), the canonical split (its unseen categories, its scaler) and the variant's
last layer (how outputs become probabilities, the study's rule for the predicted class)."""
from __future__ import annotations

from dataclasses import dataclass

import json

import numpy as np

from ..core import config
from ..core.catalog import DatasetFiles
from ..data import preprocess
from ..core.record import TrainingRecord
from ..study import scores

# pandas' dtype kind of a column as the file was read -> MLflow's column type
COLUMN_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean", "O": "string"}
CANONICAL_SPLIT = 0  # the model logged is the canonical replica's (params' seed, split 0)


@dataclass(frozen=True)
class Table:
    """A dataset's file as the served model takes it: the features with their types and
    categories, and the file's rows behind the prepared rows (the clean ones, or the max_rows
    of them preprocessing drew), in their order."""
    dataset: str
    target: str
    features: list[dict]    # {name, type, categories (None: numeric), any_case}
    rows: "object"          # pandas DataFrame: every column of the file, one row per clean row

    @classmethod
    def read(cls, dataset: config.Dataset, seed: int) -> "Table":
        """Read as preprocess@ read it, with the study's `seed` (which drew a max_rows cap)."""
        files = DatasetFiles(dataset.name)
        frame, _ = preprocess.read_csv(files.raw, dataset, f"fetch@{dataset.name}")
        table, columns = preprocess.clean(frame, files.raw, dataset)
        categories = preprocess.encode(table, columns, dataset)[3]
        features = [{"name": name, "type": COLUMN_TYPES.get(frame[name].dtype.kind, "string"),
                     "categories": categories.get(name),
                     "any_case": dataset.categorical.get(name, "auto") != "auto"}
                    for name in columns.features]
        # The prepared rows' indices count the rows preprocessing kept: under a cap, the same draw.
        source = json.loads(files.source.read_text()) if files.source.exists() else {}
        y, _ = preprocess.class_labels(table[columns.target], files.raw, f"datasets.{dataset.name}",
                                       source.get("classes"))
        kept, _ = preprocess.capped(dataset, np.arange(len(y)), y, seed)
        return cls(dataset.name, columns.target, features, frame.loc[table.index[kept]].reset_index(drop=True))

    def validation_rows(self, prepared: dict):
        """The canonical split's validation rows as the file has them (every column)."""
        return self.rows.iloc[prepared["val_index"][CANONICAL_SPLIT]].reset_index(drop=True)


def probability_rule(record: TrainingRecord) -> str:
    """How the variant's outputs become class probabilities (served_model.probabilities), as the
    study scored them (study/scores.py)."""
    return scores.probability_rule(record.config.loss, record.head.last_activation, record.config.wants)


def preprocessing(table: Table, prepared: dict, scaler: dict | None) -> dict:
    """Between a raw row and the network's input: the features, the one-hot columns the
    canonical split's training rows never set (zeroed, as splits.split_arrays zeroes them) and
    the scaler training fitted on them (None: raw features)."""
    x_train = prepared["x"][prepared["train_index"][CANONICAL_SPLIT]]
    zeroed = np.flatnonzero(prepared["onehot"] & ~x_train.any(axis=0))
    return {"features": table.features, "zeroed": zeroed.tolist(), "scaler": scaler}


def spec(record: TrainingRecord, table: Table, prepared: dict) -> dict:
    """The served model's config (JSON): everything between a raw row and the network's input,
    and between its outputs and the answer."""
    return {"dataset": record.dataset, "variant": record.variant, "record_digest": record.digest,
            **preprocessing(table, prepared, record.scaler.model_dump() if record.scaler else None),
            "columns": record.data.features, "classes": record.classes, "label": table.target.lower(),
            "rule": probability_rule(record),
            "threshold": 0.5 if record.head.last_activation == "Sigmoid" else 0.0,
            "missing": "refused"}


def signature(features, answer):
    """Input: each feature column named and typed as the file has it (`features`: the rows'
    feature columns as read; other columns are ignored); output: the columns of `answer`
    (served_model.answer). The network computes in float32, but the probabilities are declared
    double, as the served JSON carries them (and docs/serving.md shows): inferred as they are,
    they would be `float` (measured on every dataset of params.yaml, MLflow 3.17.2); the inputs
    infer as the file's types (Table.features) on all of them."""
    from mlflow.models import infer_signature

    probabilities = {name: "float64" for name in answer.columns if name.startswith("p_")}
    return infer_signature(features, answer.astype(probabilities))
