"""A dataset's comparison report in MLflow: a summary run pointing at the runs it summarizes, and
the champion's canonical model (params' seed, split 0) registered under the dataset's name
(`model_name`) with the alias `champion`."""
from __future__ import annotations

import hashlib

from pathlib import Path

from ..catalog import ReportFiles
from ..study.record import TrainingRecord
from .store import DIGEST_TAG, again_if_raced, closing_run

# Titanic's champion keeps the name it was first registered under: links and scripts use it.
OLDER_NAMES = {"titanic": "titanic-survival"}
ALIAS = "champion"


def model_name(dataset: str) -> str:
    return OLDER_NAMES.get(dataset, dataset)


def folder_digest(folder: Path) -> str:
    """A report run holds its folder's files: their bytes, in name order, are its identity."""
    blob = b"".join((folder / name).read_bytes() for name in sorted(p.name for p in folder.iterdir()))
    return hashlib.sha256(blob).hexdigest()


def digest(dataset: str) -> str:
    return folder_digest(ReportFiles(dataset).folder)


def references(summary: dict, run_ids: dict[str, str]) -> dict[str, str]:
    """The report run's tags that name other runs: the runs it summarizes and the champion's."""
    return {"champion.run_id": run_ids[summary["champion"]],
            **{f"summarizes.{name}": run_id for name, run_id in run_ids.items()}}


def log_report(client, experiment_id: str, dataset: str, summary: dict, run_ids: dict[str, str],
               extra_tags: dict) -> str:
    from mlflow.entities import Metric, Param

    files = ReportFiles(dataset)
    tags = {DIGEST_TAG: digest(dataset), "pipeline.stage": "report", "mlflow.source.name": "dvc repro",
            "dataset": dataset,
            "champion": summary["champion"], **references(summary, run_ids),
            "champion_rule": summary["champion_rule"], "hypotheses": str(summary["hypotheses"]),
            **{f"verdict.{name}": row["verdict"] for name, row in summary["variants"].items()},
            "mlflow.note.content": files.comparison_md.read_text(), **extra_tags}
    run = client.create_run(experiment_id, run_name="comparison-report", tags=tags)
    run_id = run.info.run_id
    with closing_run(client, run_id) as closing:
        params = {"variants": len(run_ids), "champion": summary["champion"], "reference": summary["reference"],
                  "study.seeds": summary["seeds"], "study.splits": summary["splits"],
                  "study.confidence": summary["confidence"], "study.margin": summary["margin"],
                  "hypotheses": summary["hypotheses"], "champion_rule": summary["champion_rule"],
                  "test": summary["test"]}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=[Metric("champion_val_accuracy_mean", summary["champion_val_accuracy_mean"],
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


def champion_version(client, champion_run_id: str, record: TrainingRecord, summary: dict) -> tuple[str, bool]:
    """One step towards the registry's rule: each model (variant and record digest) registered
    once, from a run that exists, and the alias on the champion's. Returns the version the
    alias should be on and whether this step changed anything; repeat until it changes
    nothing (register_champion, publish.settle)."""
    from mlflow.exceptions import MlflowException

    name = model_name(record.dataset)
    tags = {"variant": record.variant, "record_digest": record.digest}
    same = [v for v in client.search_model_versions(f"name = '{name}'")
            if all(v.tags.get(k) == value for k, value in tags.items())]
    live = [v for v in same if _live(client, v.run_id)]
    if not live:
        try:
            client.create_registered_model(name, description=f"{record.dataset}: the loss study's champion")
        except MlflowException:
            pass  # already registered
        model_id = client.get_run(champion_run_id).outputs.model_outputs[0].model_id
        version = again_if_raced(
            client.create_model_version, name, source=f"models:/{model_id}", run_id=champion_run_id,
            model_id=model_id, tags=tags, tries=5,
            description=f"{record.variant}, the champion by the rule: {summary['champion_rule']} "
                        f"(verdict {summary['variants'][record.variant]['verdict']}).")
        again_if_raced(client.set_registered_model_alias, name, ALIAS, version.version)
        return version.version, True
    keep = min(live, key=lambda v: int(v.version))
    changed = False
    for version in same:  # duplicates from publishers that met, and versions whose run was deleted
        if str(version.version) != str(keep.version):
            try:
                client.delete_model_version(name, version.version)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            changed = True
    try:
        current = client.get_model_version_by_alias(name, ALIAS).version
    except MlflowException:
        current = None  # no alias yet
    if str(current) != str(keep.version):
        # MLflow inserts an alias it does not find: two publishers setting it at once race.
        again_if_raced(client.set_registered_model_alias, name, ALIAS, keep.version)
        changed = True
    return keep.version, changed


def register_champion(client, champion_run_id: str, record: TrainingRecord, summary: dict) -> str:
    """Point the alias at the champion's logged model. It moves only when the champion rule's
    answer changes (another variant) or that variant's model does (retrained: another record
    digest); a re-published study, or new statistics about the same model, leave it. A model
    registered before is not registered again: the alias returns to its version."""
    for _ in range(10):
        version, changed = champion_version(client, champion_run_id, record, summary)
        if not changed:
            return version
    raise RuntimeError(f"the registered model {model_name(record.dataset)} kept changing while publishing")
