"""The model MLflow serves: raw rows in, as the dataset's file has them; class probabilities and
the predicted label out (docs/serving.md).

Logged as MLflow "models from code": this file travels with every logged model and is all the
code it runs, so it imports nothing of the pipeline (numpy, pandas, torch and MLflow only). What
the network was trained with comes in the model's spec (the artifact SPEC, JSON), written by
served_spec.py: the features (numeric, or categorical with their categories), which one-hot
columns the canonical split's training rows never set (zeroed, as training zeroed them), the
scaler fitted on that split's training part, the classes and how the network's outputs become
probabilities.

A row with a missing feature, a value that is not a number where one is expected, or a category
training never knew is refused with one line naming the column (HTTP 400 when served): the
network never saw such a row, and a guess would be silent.
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

NETWORK = "network"  # the artifact: the canonical replica's nn.Sequential, an MLflow pytorch model
# The artifact, not MLflow's model_config: MLflow 3.17 logs a model_config's keys as the run's
# params, which put the spec's lists and digest among the run's params (and the compare view's
# parallel-coordinates axes).
SPEC = "spec.json"


def refuse(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _rows(mask) -> str:
    where = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(i) for i in where[:5])
    return f"row{'s' if len(where) > 1 else ''} {shown}{', ...' if len(where) > 5 else ''}"


def features(frame: pd.DataFrame, spec: dict) -> np.ndarray:
    """The rows as the network's input: the columns preprocessing made (numeric as they are, a
    categorical one one-hot), the canonical split's unseen categories zeroed, then scaled."""
    blocks = []
    for feature in spec["features"]:
        name = feature["name"]
        if name not in frame.columns:
            raise refuse(f"column {name}: missing (the model takes {', '.join(f['name'] for f in spec['features'])})")
        values = frame[name]
        absent = values.isna() | values.astype(str).str.strip().eq("")
        if absent.any():
            raise refuse(f"column {name}: no value in {_rows(absent)}; this model was trained on rows "
                         f"without missing values and does not guess one")
        categories = feature.get("categories")
        if categories is None:
            numbers = pd.to_numeric(values, errors="coerce")
            if numbers.isna().any():
                bad = values[numbers.isna()].iloc[0]
                raise refuse(f"column {name}: {bad!r} is not a number ({_rows(numbers.isna())})")
            blocks.append(numbers.to_numpy(dtype=np.float64)[:, None])
            continue
        text = values.astype(str).str.strip()
        if feature["any_case"]:  # categories params.yaml listed are matched whatever their case
            spelled = {c.lower(): c for c in categories}
            text = text.str.lower().map(spelled).fillna(text)
        unknown = ~text.isin(categories)
        if unknown.any():
            raise refuse(f"column {name}: {text[unknown].iloc[0]!r} is not a known category "
                         f"({', '.join(categories)}; {_rows(unknown)})")
        kept = categories[1:] if len(categories) == 2 else categories
        blocks.append(np.stack([(text == c).to_numpy(dtype=np.float64) for c in kept], axis=1))
    x = np.concatenate(blocks, axis=1)
    x[:, spec["zeroed"]] = 0.0
    if spec["scaler"] is not None:
        x = (x - np.array(spec["scaler"]["mean"])) / np.array(spec["scaler"]["scale"])
    return x.astype(np.float32)


def probabilities(outputs: np.ndarray, rule: str) -> np.ndarray:
    """(rows, outputs) -> (rows, classes): each class's probability, by the rule served_spec
    chose for the variant's last layer and loss."""
    if rule == "sigmoid":       # one logit (BCEWithLogits on 0/1), or K one-vs-rest logits
        p = 1.0 / (1.0 + np.exp(-outputs))
    elif rule == "softmax":     # logits of a softmax the loss applies (CrossEntropy)
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        p = shifted / shifted.sum(axis=1, keepdims=True)
    elif rule == "exp":         # log-probabilities (LogSoftmax)
        p = np.exp(outputs)
    elif rule == "as_is":       # probabilities (Sigmoid on one output, Softmax)
        p = outputs
    elif rule == "clipped":     # scores regressing the 0/1 or one-hot target (L1, MSE, ...)
        p = np.clip(outputs, 0.0, 1.0)
    else:
        raise ValueError(rule)
    if p.shape[1] == 1:         # the second class's probability
        return np.concatenate([1.0 - p, p], axis=1)
    total = p.sum(axis=1, keepdims=True)
    # No class scored above 0 (a dead ReLU): nothing to tell them apart by.
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def labels(outputs: np.ndarray, threshold: float) -> np.ndarray:
    """The class the study counted as predicted (study/losses.py predict): argmax of several
    outputs, a threshold on one."""
    if outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    return (outputs[:, 0] >= threshold).astype(np.int64)


def answer(outputs: np.ndarray, spec: dict) -> pd.DataFrame:
    """p_<class> per class (two classes: the second's alone, as the target's 1 stands for it)
    and the predicted label: for two classes, named after the second class and 0/1; else named
    after the target and the class's name."""
    p, predicted, classes = probabilities(outputs, spec["rule"]), labels(outputs, spec["threshold"]), spec["classes"]
    if len(classes) == 2:
        return pd.DataFrame({f"p_{classes[1]}": p[:, 1], classes[1]: predicted})
    table = pd.DataFrame({f"p_{c}": p[:, i] for i, c in enumerate(classes)})
    table[spec["label"]] = [classes[i] for i in predicted]
    return table


class ServedModel(mlflow.pyfunc.PythonModel):
    @classmethod
    def of(cls, spec: dict, network) -> "ServedModel":
        """The model as it will load, from its config and network (publishing evaluates it so)."""
        model = cls()
        model.spec, model.network = spec, network.eval()
        return model

    def load_context(self, context):
        self.spec = json.loads(Path(context.artifacts[SPEC]).read_text())
        self.network = mlflow.pytorch.load_model(context.artifacts[NETWORK]).eval()

    def outputs(self, frame: pd.DataFrame) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.network(torch.from_numpy(features(frame, self.spec))).numpy().astype(np.float64)

    # A DataFrame hint: MLflow checks the input against the signature alone (no type-hint schema).
    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return answer(self.outputs(frame), self.spec)


mlflow.models.set_model(ServedModel())
