"""A dataset's comparison report in MLflow: a summary run pointing at the runs it summarizes, and
the champion's canonical model (params' seed, split 0; the served model, raw rows in) registered
under the dataset's name (`model_name`) with the alias `champion`.

The alias follows the study of the project's main branch only (docs/serving.md): a publish from
a DVC experiment, an `mlflow run` launch or another branch may register a version (tagged with
where it came from) but leaves the alias where it is."""
from __future__ import annotations

import hashlib
import json

from pathlib import Path

from ..core import config
from ..core.figures import NEUTRAL
from ..core.catalog import ReportFiles
from ..core.record import TrainingRecord
from ..core.summaries import ReportSummary
from .store import DIGEST_TAG, again_if_raced, closing_run
from .evaluation import METRIC_PREFIX
from .variant_runs import MODEL_CODE, ORDER_TAG, readable

ALIAS = "champion"
NOT_MOVED_TAG = "champion_alias"  # on a version registered by a publish that may not move the alias: why


def model_name(settings: config.Dataset) -> str:
    """The registered model of a dataset's champion: its params.yaml `registered_as`, else its name."""
    return settings.registered_as or settings.name


def folder_digest(folder: Path) -> str:
    """A report run holds its folder's files: their bytes, in name order, are its identity."""
    blob = b"".join((folder / name).read_bytes() for name in sorted(p.name for p in folder.iterdir()))
    return hashlib.sha256(blob).hexdigest()


def digest(dataset: str) -> str:
    return folder_digest(ReportFiles(dataset).folder)


def references(summary: ReportSummary, run_ids: dict[str, str]) -> dict[str, str]:
    """The report run's tags that name other runs: the runs it summarizes and the champion's."""
    return {"champion.run_id": run_ids[summary.champion],
            **{f"summarizes.{name}": run_id for name, run_id in run_ids.items()}}


def log_report(client, experiment_id: str, dataset: str, summary: ReportSummary, run_ids: dict[str, str],
               extra_tags: dict, run_name: str = "comparison-report") -> str:
    from mlflow.entities import Metric, Param

    files = ReportFiles(dataset)
    tags = {DIGEST_TAG: digest(dataset), "pipeline.stage": "report", "mlflow.source.name": "dvc repro",
            "dataset": dataset,
            "champion": summary.champion, **references(summary, run_ids),
            "champion_rule": summary.champion_rule, "hypotheses": str(summary.hypotheses),
            **{f"verdict.{name}": row.verdict for name, row in summary.variants.items()},
            "mlflow.note.content": files.comparison_md.read_text(),
            "mlflow.runColor": NEUTRAL, ORDER_TAG: "00", **extra_tags}
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    with closing_run(client, run_id) as closing:
        params = {"variants": len(run_ids), "champion": summary.champion, "reference": summary.reference,
                  "study.seeds": summary.seeds, "study.splits": summary.splits,
                  "study.confidence": summary.confidence, "study.margin": summary.margin,
                  "hypotheses": summary.hypotheses, "champion_rule": summary.champion_rule,
                  "test": summary.test}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=[Metric("champion_val_accuracy_mean", readable(summary.champion_val_accuracy_mean),
                                         run.info.start_time, 0)])
        client.log_artifacts(run_id, str(files.folder))
        closing.finish()
    return run_id


def _live(client, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


METRIC_NAMES = {"accuracy": "accuracy", "log_loss": "log loss", "roc_auc": "ROC AUC",
                "expected_calibration_error": "expected calibration error"}


def identity(record: TrainingRecord) -> dict[str, str]:
    """A registered model version's identity: its variant, its record and the served model's code
    (new code serves otherwise: a new version)."""
    return {"variant": record.variant, "record_digest": record.digest, "model_code": MODEL_CODE}


def version_tags(record: TrainingRecord, summary: ReportSummary, evaluated: dict[str, float]) -> dict[str, str]:
    """What a version says about itself: the model's identity (how a version is found again),
    its dataset, verdict and data, its evaluation."""
    return {**identity(record), "dataset": record.dataset,
            "verdict": summary.variants[record.variant].verdict, "data.sha256": record.data.sha256,
            **{f"evaluation.{key}": f"{value:.4f}" for key, value in sorted(evaluated.items())},
            # rows: the actual class, columns: the predicted one (the run's evaluation/confusion_matrix.json)
            "evaluation.confusion_matrix": json.dumps(record.confusion_matrix)}


def version_description(record: TrainingRecord, summary: ReportSummary, evaluated: dict[str, float]) -> str:
    row = summary.variants[record.variant]
    shown = ", ".join(f"{METRIC_NAMES.get(key, key)} {value:.3f}" for key, value in sorted(evaluated.items()))
    return (f"{record.dataset}: {record.variant} ({record.config.loss} on {record.head.last_activation} outputs), "
            f"the canonical replica (seed {record.seed}, split 0). Verdict against {summary.reference}: "
            f"{row.verdict}; the champion by the rule: {summary.champion_rule.rstrip('.')}. Validation rows of split 0: "
            f"{shown}. Data sha256 {record.data.sha256}. Takes the file's raw rows (docs/serving.md).")


def champion_version(client, name: str, champion_run_id: str, record: TrainingRecord, summary: ReportSummary,
                     stays: str | None = None, origin: dict[str, str] | None = None) -> tuple[str, bool]:
    """One step towards the registry's rule: each model (variant and record digest) registered
    once, from a run that exists, and the alias on the champion's unless `stays` says why it
    may not move (a DVC experiment, a launch, another branch: the version is registered, tagged
    with `origin`, and the alias left). Returns the version of the champion's model and whether
    this step changed anything; repeat until it changes nothing (register_champion, publish.settle)."""
    from mlflow.exceptions import MlflowException

    same = [v for v in client.search_model_versions(f"name = '{name}'")
            if all(v.tags.get(k) == value for k, value in identity(record).items())]
    live = [v for v in same if _live(client, v.run_id)]
    if not live:
        return _register(client, name, champion_run_id, record, summary, stays, origin), True
    keep = min(live, key=lambda v: int(v.version))
    try:
        current = str(client.get_model_version_by_alias(name, ALIAS).version)
    except MlflowException:
        current = None  # no alias yet
    changed = False
    for version in same:  # duplicates from publishers that met, and versions whose run was deleted
        # Deleting the alias's version would drop the alias: only a publish that may move it does.
        if str(version.version) != str(keep.version) and (stays is None or str(version.version) != current):
            try:
                client.delete_model_version(name, version.version)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            changed = True
    if stays is not None:
        return keep.version, changed
    if current != str(keep.version):
        # MLflow inserts an alias it does not find: two publishers setting it at once race.
        again_if_raced(client.set_registered_model_alias, name, ALIAS, keep.version)
        changed = True
    if NOT_MOVED_TAG in keep.tags:
        # Registered by an experiment, now the champion of main's study: no longer "not moved".
        client.delete_model_version_tag(name, keep.version, NOT_MOVED_TAG)
        changed = True
    return keep.version, changed


def _register(client, name: str, champion_run_id: str, record: TrainingRecord, summary: ReportSummary,
              stays: str | None, origin: dict[str, str] | None) -> str:
    """A new version of the champion's logged model (the alias on it unless `stays`)."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=f"{record.dataset}: the loss study's champion, "
                                                         f"served from raw rows (docs/serving.md)")
    except MlflowException:
        pass  # already registered
    run = client.get_run(champion_run_id)
    model_id = run.outputs.model_outputs[0].model_id
    evaluated = {k[len(METRIC_PREFIX):]: v for k, v in run.data.metrics.items() if k.startswith(METRIC_PREFIX)}
    version = again_if_raced(
        client.create_model_version, name, source=f"models:/{model_id}", run_id=champion_run_id,
        model_id=model_id, tags={**version_tags(record, summary, evaluated), **(origin or {})}, tries=5,
        description=version_description(record, summary, evaluated))
    if stays is None:
        again_if_raced(client.set_registered_model_alias, name, ALIAS, version.version)
    return version.version


def register_champion(client, name: str, champion_run_id: str, record: TrainingRecord, summary: ReportSummary,
                      stays: str | None = None, origin: dict[str, str] | None = None) -> str:
    """Point the alias at the champion's logged model. It moves only when the champion rule's
    answer changes (another variant) or that variant's model does (retrained: another record
    digest); a re-published study, or new statistics about the same model, leave it. A model
    registered before is not registered again: the alias returns to its version."""
    for _ in range(10):
        version, changed = champion_version(client, name, champion_run_id, record, summary, stays, origin)
        if not changed:
            return version
    raise RuntimeError(f"the registered model {name} kept changing while publishing")
