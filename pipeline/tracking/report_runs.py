"""The comparison report in MLflow: a summary run pointing at the runs it summarizes, and the
champion's canonical model (params' seed, split 0) registered as `titanic-survival` under the
alias `champion`."""
from __future__ import annotations

import hashlib

from ..catalog import COMPARISON_MD, REPORT
from ..titanic.record import TrainingRecord
from .store import closing_run
from .titanic_runs import DIGEST_TAG

MODEL_NAME = "titanic-survival"
ALIAS = "champion"


def digest() -> str:
    blob = b"".join((REPORT / name).read_bytes() for name in sorted(p.name for p in REPORT.iterdir()))
    return hashlib.sha256(blob).hexdigest()


def log_report(client, experiment_id: str, summary: dict, run_ids: dict[str, str], extra_tags: dict) -> str:
    from mlflow.entities import Metric, Param

    tags = {DIGEST_TAG: digest(), "pipeline.stage": "report", "mlflow.source.name": "dvc repro",
            "champion": summary["champion"], "champion.run_id": run_ids[summary["champion"]],
            "champion_rule": summary["champion_rule"], "hypotheses": str(summary["hypotheses"]),
            **{f"summarizes.{name}": run_id for name, run_id in run_ids.items()},
            **{f"verdict.{name}": row["verdict"] for name, row in summary["variants"].items()},
            "mlflow.note.content": COMPARISON_MD.read_text(), **extra_tags}
    run = client.create_run(experiment_id, run_name="comparison-report", tags=tags)
    run_id = run.info.run_id
    with closing_run(client, run_id):
        params = {"variants": len(run_ids), "champion": summary["champion"], "reference": summary["reference"],
                  "study.seeds": summary["seeds"], "study.splits": summary["splits"],
                  "study.confidence": summary["confidence"], "study.margin": summary["margin"],
                  "hypotheses": summary["hypotheses"], "champion_rule": summary["champion_rule"],
                  "test": summary["test"]}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=[Metric("champion_val_accuracy_mean", summary["champion_val_accuracy_mean"],
                                         run.info.start_time, 0)])
        client.log_artifacts(run_id, str(REPORT))
        client.set_terminated(run_id, "FINISHED")
    return run_id


def register_champion(client, champion_run_id: str, record: TrainingRecord, summary: dict) -> str:
    """Point the alias at the champion's logged model. It moves only when the champion rule's
    answer changes (another variant) or that variant's model does (retrained: another record
    digest); a re-published study, or new statistics about the same model, leave it."""
    from mlflow.exceptions import MlflowException

    tags = {"variant": record.variant, "record_digest": record.digest}
    try:
        current = client.get_model_version_by_alias(MODEL_NAME, ALIAS)
        if current.run_id == champion_run_id or all(current.tags.get(k) == v for k, v in tags.items()):
            return current.version
    except MlflowException:
        pass  # no model or no alias yet
    try:
        client.create_registered_model(MODEL_NAME, description="Titanic survival: the loss study's champion")
    except MlflowException:
        pass  # already registered
    model_id = client.get_run(champion_run_id).outputs.model_outputs[0].model_id
    version = client.create_model_version(
        MODEL_NAME, source=f"models:/{model_id}", run_id=champion_run_id, model_id=model_id, tags=tags,
        description=f"{record.variant}, the champion by the rule: {summary['champion_rule']} "
                    f"(verdict {summary['variants'][record.variant]['verdict']}).")
    client.set_registered_model_alias(MODEL_NAME, ALIAS, version.version)
    return version.version
