"""What one Titanic variant's MLflow run holds: params, tags, per-epoch metrics, datasets, artifacts, model."""
from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

from .paths import FIGURES, HISTORY, RESULTS, TITANIC_PREPARED
from .tracking import closing_run

DIGEST_TAG = "pipeline.digest"


def run_params(record: dict) -> dict[str, str]:
    c, t = record["config"], record["config"]["training"]
    d = record["data"]
    params = {
        "variant": record["variant"], "loss": c["loss"], "last_activation": c["last_activation"],
        "target_encoding": c["target_encoding"], "outputs": c["outputs"],
        "optimizer": t["optimizer"], "lr": t["lr"], "batch_size": t["batch_size"],
        "epochs": t["epochs"], "shuffle": t["shuffle"], "seed": record["seed"],
        "hidden_size": t["hidden_size"], "hidden_layers": t["hidden_layers"],
        "layer_sizes": "-".join(map(str, record["layer_sizes"])),
        "regularization.penalty": t["regularization"]["penalty"],
        "regularization.strength": t["regularization"]["strength"],
        "regularization.l1_ratio": t["regularization"]["l1_ratio"],
        "data.source": d["source"], "data.address": d["address"], "data.sha256": d["sha256"],
        "data.rows": d["rows"], "data.train_rows": d["train_rows"], "data.val_rows": d["val_rows"],
        "data.features": ",".join(d["features"]),
    }
    return {key: str(value) for key, value in params.items()}


def run_tags(record: dict) -> dict[str, str]:
    c = record["config"]
    diagnosis = record["diagnosis"]
    note = f"**{record['variant']}**: {c['loss']} on {c['last_activation']} outputs. " \
           f"Diagnosis: {diagnosis['status']} ({diagnosis['reason']})."
    if record["warning"]:
        note += f"\n\nWarned before training: {record['warning']}."
    tags = {
        "variant": record["variant"], "loss_family": record["loss_family"],
        "last_activation": c["last_activation"], "diagnosis": diagnosis["status"],
        "diagnosis.reason": diagnosis["reason"], "mismatch_warning": record["warning"] or "none",
        "pipeline.stage": f"train@{record['variant']}", DIGEST_TAG: record["digest"],
        "mlflow.note.content": note, "mlflow.source.name": "dvc repro",
    }
    if c.get("contrast"):
        tags["contrast"] = c["contrast"]
    return tags


def run_metrics(record: dict):
    from mlflow.entities import Metric

    metrics = []
    for h in record["history"]:
        values = {"train/loss": h["train_loss"], "val/loss": h["val_loss"], "val/accuracy": h["val_accuracy"]}
        if record["config"]["training"]["regularization"]["penalty"] != "none":
            values["train/penalty"] = h["train_penalty"]
        metrics += [Metric(key, float(v), h["timestamp_ms"], h["epoch"]) for key, v in values.items()]
    last = record["history"][-1]
    summary = record["summary"]
    metrics += [Metric("val/best_accuracy", summary["best_val_accuracy"], last["timestamp_ms"], last["epoch"]),
                Metric("best_epoch", summary["best_epoch"], last["timestamp_ms"], last["epoch"])]
    return metrics


def load_model(record: dict):
    import torch

    from .model import build_mlp

    c, t = record["config"], record["config"]["training"]
    model = build_mlp(record["layer_sizes"][0], t["hidden_size"], t["hidden_layers"], c["outputs"],
                      c["last_activation"])
    state = torch.load(io.BytesIO((RESULTS / record["variant"] / "model.pt").read_bytes()), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def datasets(data: dict, source: dict):
    """The training and validation splits as MLflow dataset inputs (name, digest, schema)."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    origin = source["address"] if source["source"] == "url" else str(TITANIC_PREPARED.resolve())
    inputs = []
    for split, context in (("train", "training"), ("val", "validation")):
        dataset = mlflow.data.from_numpy(data[f"x_{split}"], targets=data[f"y_{split}"], source=origin,
                                         name=f"titanic-{split}")
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def log_run(client, experiment_id: str, record: dict, data: dict, inputs, extra_tags: dict) -> str:
    import mlflow
    import torch
    from mlflow.entities import Param
    from mlflow.models import infer_signature

    name = record["variant"]
    run = client.create_run(experiment_id, start_time=record["started_ms"], tags={**run_tags(record), **extra_tags},
                             run_name=name)
    run_id = run.info.run_id
    with closing_run(client, run_id):
        client.log_batch(run_id, params=[Param(k, v) for k, v in run_params(record).items()])
        client.log_batch(run_id, metrics=run_metrics(record))
        client.log_inputs(run_id, datasets=inputs)
        # The same artifact names in every run, so the UI lines them up across variants.
        with tempfile.TemporaryDirectory() as tmp:
            for source, target in ((FIGURES / f"{name}_loss.png", "loss_curve.png"),
                                   (FIGURES / f"{name}_confusion.png", "confusion_matrix.png"),
                                   (HISTORY / f"{name}.csv", "history.csv"),
                                   (RESULTS / name / "record.json", "record.json")):
                shutil.copyfile(source, Path(tmp) / target)
            client.log_artifacts(run_id, tmp)
        model = load_model(record)
        example = data["x_val"][:5]
        with torch.no_grad():
            signature = infer_signature(example, model(torch.from_numpy(example)).numpy())
        with mlflow.start_run(run_id=run_id):
            # pickle: loads back as the same nn.Sequential (pt2 would give a GraphModule);
            # explicit requirements skip inference, which costs 4-5 s a model.
            mlflow.pytorch.log_model(model, name="model", serialization_format="pickle", signature=signature,
                                     input_example=example,
                                     pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        client.set_terminated(run_id, "FINISHED", end_time=record["ended_ms"])
    return run_id
