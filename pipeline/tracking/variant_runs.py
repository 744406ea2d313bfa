"""What one variant's MLflow run on one dataset holds: params, tags, per-epoch metrics (its replicas'
mean and band, its canonical run's), the study's summary, datasets, artifacts (every
replica's history as replicas.csv), the canonical model as the model MLflow serves (raw rows in,
probabilities out: served_model.py), evaluated on its validation rows (evaluation.py)."""
from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from ..core.catalog import DatasetFiles, VariantFiles
from ..core.errors import PipelineError
from ..core.record import SCORES, TrainingRecord
from ..core.summaries import ReportSummary, VariantRow
from .store import DIGEST_TAG, again_if_raced, closing_run


# The report's per-variant statistics, logged as the run's summary metrics (study.<key>). No "/"
# in their names: the UI's chart view sorts sections by the part before it, and these one-value
# metrics belong after the train/ and val/ curves, in its last section.
STUDY_METRICS = ("val_accuracy_mean", "val_accuracy_sd", "val_accuracy_ci_low", "val_accuracy_ci_high",
                 "diff_vs_reference", "diff_ci_low", "diff_ci_high", "p_improvement", "p_improvement_ci_low",
                 "p_improvement_ci_high", "p_value", "p_holm", "p_equivalence", "p_equivalence_holm")
# The probabilities' secondary scores (the report's val_<score>_<part>) as val/<score>_<part>: in the
# chart view's val section, and in the compare view after study.* and train/ (it lists a run's
# metrics by name, about 17 in view: nine more study.* would push train/ out of it).
SCORE_METRICS = {f"val_{name}_{part}": f"val/{name}_{part}"
                 for name in SCORES for part in ("mean", "ci_low", "ci_high")}


# A curve's metric name is the replicas' mean; its canonical run's (params' seed, split 0) ends in
# CANONICAL. A suffix, not a prefix: the chart view orders its sections by name, so a `canonical/`
# section would come first, and the compare view's table sorts names, so would `canonical.`.
CURVES = ("val_accuracy", "train_loss", "val_loss")  # in the order logged (see run_metrics)
CURVE_NAMES = {"train_loss": "train/loss", "val_loss": "val/loss", "val_accuracy": "val/accuracy"}
CANONICAL = "_canonical"

# What a run's logged model is: the code of the served model, its config (its probability rule
# study/scores.py's) and its evaluation. A change to it makes every run new (logged again, once),
# so no run holds a model older than its code.
MODEL_CODE = hashlib.sha256(b"".join((Path(__file__).parents[1] / name).read_bytes() for name in (
    "tracking/served_model.py", "tracking/served_spec.py", "tracking/evaluation.py", "study/scores.py"))).hexdigest()
REPLICA_SCORES = "replica_scores.csv"  # every replica's final accuracy and SCORES, one row each
EVALUATION = "evaluation"  # the run's folder of the served model's evaluation (its reliability diagram)


# Which study a run is of: the fixed one here, the tuned one in tuned_runs.py.
STUDY_TAG, FIXED = "study", "fixed"

# How a run is laid out (its metrics' names, its tags): a new layout logs every run again, once.
RUN_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def run_digest(record: TrainingRecord, stats: VariantRow, conclusion: ReportSummary) -> str:
    """A variant run holds its training record, what the report concluded about it, the served
    model's code and the layout's."""
    blob = json.dumps({"record": record.digest, "stats": stats.model_dump(), "reference": conclusion.reference,
                       "champion": conclusion.champion, "model": MODEL_CODE, "layout": RUN_CODE},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def run_params(record: TrainingRecord, source: dict, conclusion: ReportSummary) -> dict[str, str]:
    c, t, d = record.config, record.config.training, record.data
    params = {
        "variant": record.variant, "loss": c.loss, "last_activation": c.last_activation,
        "target_encoding": record.head.encoding, "outputs": record.head.outputs,
        "optimizer": t.optimizer, "lr": t.lr, "batch_size": t.batch_size,
        "epochs": t.epochs, "shuffle": t.shuffle, "standardize": t.standardize, "seed": record.seed,
        "hidden_size": t.hidden_size, "hidden_layers": t.hidden_layers,
        "layer_sizes": "-".join(map(str, record.layer_sizes)),
        "regularization.penalty": t.regularization.penalty,
        "regularization.strength": t.regularization.strength,
        "regularization.l1_ratio": t.regularization.l1_ratio,
        "study.seeds": record.study.seeds, "study.splits": record.study.splits,
        "study.replicas": record.study.replicas, "study.reference": conclusion.reference,
        "study.confidence": conclusion.confidence, "study.margin": conclusion.margin,
        "data.source": source.get("source", "unknown"), "data.address": source.get("address", "unknown"),
        "data.sha256": d.sha256, "data.rows": source.get("rows", "unknown"), "data.rows_clean": d.rows_clean,
        "data.train_rows": d.train_rows, "data.val_rows": d.val_rows, "data.features": ",".join(d.features),
        "data.encoding": d.encoding, "data.delimiter": d.delimiter, "data.classes": len(record.classes),
        "data.majority_share": d.majority_share,
    }
    # Only where a variant has them: a torch loss's arguments, a loss of your own's reading and code.
    if c.loss_args:
        params["loss_args"] = json.dumps(dict(c.loss_args), sort_keys=True)
    if c.wants:
        params["wants"] = c.wants
    params.update({f"loss_code.{module}": digest[:12] for module, digest in record.loss_code.items()})
    return {key: str(value) for key, value in params.items()}


# The study view's first columns and order (study_view.py): the mean with its interval as one
# readable text, and the variant's place in the study (the report run's is 00, first).
ACCURACY_TAG, ORDER_TAG = "accuracy", "order"


def accuracy(stats: VariantRow) -> str:
    values = (stats.val_accuracy_mean, stats.val_accuracy_ci_low, stats.val_accuracy_ci_high)
    if any(value is None for value in values):  # a statistic the report could not compute
        return "-"
    return "{:.3f} [{:.3f}, {:.3f}]".format(*values)


# MLflow's UI draws a run in the colour of its tag mlflow.runColor (checked in Chromium on 3.17.2),
# else in one derived from its run id, which two runs may share: each variant's is its colour in
# every figure (core/figures.py), the same on every dataset.


def run_tags(record: TrainingRecord, stats: VariantRow, conclusion: ReportSummary, colour: str, place: int
             ) -> dict[str, str]:
    """`colour` and `place` (1, 2, ...) are the variant's in the study (params.yaml's order)."""
    c, diagnosis, name = record.config, record.diagnosis, record.variant
    champion = conclusion.champion
    standing = ("the champion" if name == champion else f"not the champion ({champion} is)")
    note = (f"**{name}**: {c.loss} on {c.last_activation} outputs, {record.study.replicas} replicas "
            f"({record.study.seeds} seeds on each of {record.study.splits} splits).\n\n"
            f"Final validation accuracy {stats.val_accuracy_mean:.3f} "
            f"[{stats.val_accuracy_ci_low:.3f}, {stats.val_accuracy_ci_high:.3f}] over the replicas; "
            f"against {conclusion.reference}: **{stats.verdict}** (margin +-{conclusion.margin:g}, "
            f"Holm over {conclusion.hypotheses} hypotheses); {standing} by the rule: "
            f"{conclusion.champion_rule}.\n\n"
            f"Diagnoses: {stats.diagnoses}. Canonical run (seed {record.seed}, split 0, the model logged "
            f"here): {diagnosis.status} ({diagnosis.reason}).")
    if record.warning:
        note += f"\n\nWarned before training: {record.warning}."
    tags = {
        "variant": name, "dataset": record.dataset, "loss_family": record.loss_family,
        "last_activation": c.last_activation, "diagnosis": diagnosis.status,
        "diagnosis.reason": diagnosis.reason, "diagnoses": stats.diagnoses,
        **{f"diagnoses.{status}": f"{n}/{record.study.replicas}" for status, n in record.diagnoses.items()},
        "verdict": stats.verdict, "champion": "yes" if name == champion else "no", STUDY_TAG: FIXED,
        "mismatch_warning": record.warning or "none",
        "pipeline.stage": VariantFiles(name, record.dataset).stage, "mlflow.note.content": note, "mlflow.source.name": "dvc repro",
        "mlflow.runColor": colour, ORDER_TAG: f"{place:02d}", ACCURACY_TAG: accuracy(stats),
    }
    if stats.identical_to:
        tags["identical_to"] = stats.identical_to
    if c.contrast:
        tags["contrast"] = c.contrast
    return tags


def run_metrics(record: TrainingRecord, stats: VariantRow, times: dict | None):
    """Per epoch (step = epoch): the replicas' mean under the plain names (val/accuracy,
    train/loss, val/loss), their min and max beside (val/accuracy_min, ...), the canonical run's
    under CANONICAL (val/accuracy_canonical, ...); then the study's summary (study.<key>) at the
    last epoch. val/accuracy comes first: the compare view's first plot is the first metric a run
    logged (MLflow 3.17), and a stalled canonical run's loss of 0 must not be what it shows."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    history = record.history
    stamps = (times or {}).get("epoch_ms") or [now] * len(history)
    penalized = record.config.training.regularization.penalty != "none"
    metrics = []
    for h, stamp in zip(history, stamps):
        values = {}
        for key in CURVES:
            curve = record.curves[key]
            values[CURVE_NAMES[key]] = curve.mean[h.epoch - 1]
            for edge in ("min", "max"):
                values[f"{CURVE_NAMES[key]}_{edge}"] = getattr(curve, edge)[h.epoch - 1]
        for key in CURVES:
            values[CURVE_NAMES[key] + CANONICAL] = getattr(h, key)
        if penalized:
            values["train/penalty" + CANONICAL] = h.train_penalty
        metrics += [Metric(key, float(v), stamp, h.epoch) for key, v in values.items()]
    last, stamp = history[-1].epoch, stamps[-1]
    if record.summary:
        metrics += [Metric("val/best_accuracy" + CANONICAL, record.summary.best_val_accuracy, stamp, last),
                    Metric("val/best_epoch" + CANONICAL, record.summary.best_epoch, stamp, last)]
    metrics += summary_metrics(stats, stamp, last)
    if times:
        metrics.append(Metric("train_seconds", (times["ended_ms"] - times["started_ms"]) / 1000, stamp, last))
    return metrics


def readable(value: float) -> float:
    """A statistic as a metric a person reads: 4 significant digits (the UI prints every digit)."""
    return float(f"{value:.4g}")


def summary_metrics(stats: VariantRow, stamp: int, step: int) -> list:
    """The report's statistics of a variant as metrics (STUDY_METRICS, SCORE_METRICS), each to 4
    significant digits: what the study's view shows a person (the UI prints a metric's every
    digit); their full precision is the report's (summary.json, comparison.csv)."""
    from mlflow.entities import Metric

    values = stats.model_dump()
    named = {**{key: f"study.{key}" for key in STUDY_METRICS}, **SCORE_METRICS}
    return [Metric(name, readable(values[key]), stamp, step) for key, name in named.items()
            if values[key] is not None]


def load_model(record: TrainingRecord):
    import torch

    from ..study.model import build_mlp

    t = record.config.training
    model = build_mlp(record.layer_sizes[0], t.hidden_size, t.hidden_layers, record.head.outputs,
                      record.head.last_activation)
    state = torch.load(io.BytesIO(VariantFiles(record.variant, record.dataset).model.read_bytes()), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def datasets(split: dict, source: dict, dataset: str):
    """The canonical training and validation split as MLflow dataset inputs (name, digest, schema)."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    origin = source["address"] if source.get("source") == "url" else str(DatasetFiles(dataset).prepared.resolve())
    inputs = []
    for part, context in (("train", "training"), ("val", "validation")):
        table = mlflow.data.from_numpy(split[f"x_{part}"], targets=split[f"y_{part}"], source=origin,
                                       name=f"{dataset}-{part}")
        inputs.append(DatasetInput(table._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


@dataclass
class VariantRun:
    """What one variant's run is made of."""
    record: TrainingRecord      # the train stage's record
    stats: VariantRow           # the report's row for this variant
    conclusion: ReportSummary   # the report's reference, champion and its ties
    source: dict                # where the data came from (data/<dataset>/source.json)
    times: dict | None          # when it trained (logs/run-times), None after a run-cache restore
    split: dict                 # the canonical split's arrays, as this variant trained on them
    served: dict                # the served model's config (served_spec.spec)
    rows: object                # the canonical split's validation rows as the file has them (DataFrame)
    colour: str                 # the variant's (core/figures.py)
    place: int                  # the variant's in params.yaml's `variants`, from 1

    @property
    def digest(self) -> str:
        return run_digest(self.record, self.stats, self.conclusion)


def log_run(client, experiment_id: str, run: VariantRun, inputs: list, extra_tags: dict,
            run_name: str | None = None) -> str:
    """The run (named `run_name`, else after its variant); `inputs` are its canonical split as
    MLflow dataset inputs (see datasets)."""
    record = run.record
    tags = {**run_tags(record, run.stats, run.conclusion, run.colour, run.place), DIGEST_TAG: run.digest, **extra_tags}
    if run.times:
        tags["pipeline.trained_ms"] = f"{run.times['started_ms']}-{run.times['ended_ms']}"
    # The served model answers first: a model that answers otherwise than training never gets a run.
    model = load_model(record)
    served = evaluate(run, model)
    run_id = client.create_run(experiment_id, tags=tags, run_name=run_name or record.variant).info.run_id
    with closing_run(client, run_id) as closing:
        log_training(client, run_id, run, inputs)
        log_served_model(client, run_id, run, model, served, closing)
    return run_id


@dataclass
class Evaluated:
    """The served model's answers on the canonical split's validation rows (served_model.py)."""
    answer: object              # what a request gets back (DataFrame): the signature's outputs
    probabilities: object       # (rows, classes)
    scores: dict                # evaluation.metrics
    matrix: dict                # evaluation.confusion, the same as training's


def evaluate(run: VariantRun, model) -> Evaluated:
    """The served model's answers, refused unless its confusion matrix is training's."""
    from . import evaluation, served_model

    record, y = run.record, run.split["y_val"]
    outputs = served_model.ServedModel.of(run.served, model).outputs(run.rows)
    probabilities = served_model.probabilities(outputs, run.served["rule"])
    predicted = served_model.labels(outputs, run.served["threshold"])
    matrix = evaluation.confusion(predicted, y, record.classes)
    if matrix["matrix"] != record.confusion_matrix:
        raise PipelineError(f"{record.dataset} {record.variant}: the served model answers split 0's validation rows "
                            f"otherwise than training did ({matrix['matrix']} against {record.confusion_matrix}); "
                            f"nothing is published for it")
    return Evaluated(served_model.answer(outputs, run.served), probabilities,
                     evaluation.metrics(probabilities, predicted, y), matrix)


def log_training(client, run_id: str, run: VariantRun, inputs: list) -> None:
    """What training and the report left: params, metrics, the canonical split, the artifacts."""
    from mlflow.entities import Param

    record = run.record
    client.log_batch(run_id, params=[Param(k, v) for k, v in run_params(record, run.source, run.conclusion).items()])
    metrics = run_metrics(record, run.stats, run.times)
    for start in range(0, len(metrics), 1000):  # log_batch takes up to 1000 metrics a call
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    # Datasets are shared rows: two publishers logging the same split at once race to insert it.
    again_if_raced(client.log_inputs, run_id, datasets=inputs)
    # The same artifact names in every run (the catalog's), so the UI lines them up across variants.
    for path in VariantFiles(record.variant, record.dataset).artifacts():
        client.log_artifact(run_id, str(path))
    client.log_text(run_id, replica_scores(record), REPLICA_SCORES)


def replica_scores(record: TrainingRecord) -> str:
    """REPLICA_SCORES' text: a replica that broke has empty cells."""
    lines = [",".join(("replica", "seed", "split", "accuracy", *SCORES))]
    for r in record.replicas:
        values = [r.summary.final_val_accuracy if r.summary else None,
                  *(getattr(r.scores, name) if r.scores else None for name in SCORES)]
        lines.append(",".join([str(r.replica), str(r.seed), str(r.split),
                               *("" if v is None else repr(float(v)) for v in values)]))
    return "\n".join(lines) + "\n"


def log_served_model(client, run_id: str, run: VariantRun, model, served: Evaluated, closing) -> None:
    """The served model, its evaluation, and the end of the run (FINISHED, by `closing`)."""
    import mlflow

    from . import evaluation, served_model, served_spec

    record, features = run.record, run.rows[[f["name"] for f in run.served["features"]]]
    requirements = [f"{package}=={version(package).split('+')[0]}" for package in ("torch", "numpy", "pandas")]
    with tempfile.TemporaryDirectory() as tmp:
        network, spec = Path(tmp) / served_model.NETWORK, Path(tmp) / served_model.SPEC
        spec.write_text(json.dumps(run.served, indent=1))
        # pickle: loads back as the same nn.Sequential (pt2 would give a GraphModule).
        mlflow.pytorch.save_model(model, network, serialization_format="pickle",
                                  pip_requirements=requirements[:1])
        diagram = Path(tmp) / "reliability.png"
        diagram.write_bytes(evaluation.reliability_png(served.probabilities, run.split["y_val"],
                                                       f"{record.dataset}: {record.variant}"))
        client.log_artifact(run_id, str(diagram), EVALUATION)
        # The served model's own, the same as training's (checked by evaluate, drawn in confusion_matrix.png).
        client.log_dict(run_id, served.matrix, f"{EVALUATION}/confusion_matrix.json")
        # Leaving this block ends the run FINISHED: the model and its metrics are the last
        # things logged. Nothing may touch the run after that: a publisher that met this one
        # may delete it as a duplicate the moment it is FINISHED (store.resolve).
        with mlflow.start_run(run_id=run_id):
            # Explicit requirements skip inference, which costs seconds a model.
            info = mlflow.pyfunc.log_model(
                name="model", python_model=served_model.__file__,
                artifacts={served_model.NETWORK: str(network), served_model.SPEC: str(spec)},
                signature=served_spec.signature(features, served.answer), input_example=features.head(5),
                pip_requirements=requirements)
            mlflow.log_metrics({f"{evaluation.METRIC_PREFIX}{key}": value for key, value in served.scores.items()},
                               model_id=info.model_id)
            closing.ending()
