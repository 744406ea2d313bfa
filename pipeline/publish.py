"""Stage publish: each Titanic variant becomes one MLflow run, each alpha sweep a parent with a
child per alpha; once.

Training stages only write files; this stage logs whatever MLflow does not hold yet. A run
is identified by the digest of its configuration and results (tag `pipeline.digest`), so a
DVC run-cache restore, a retry after the server was down, or a second publish logs exactly
the missing runs and never one twice. A run left half-logged by an interrupted publish
(still RUNNING, or FAILED) is deleted and logged again.
"""
from __future__ import annotations

import json
import logging
import warnings

from . import config, iris_run, tracking
from .errors import PipelineError
from .paths import SWEEP_RECORD
from .plot_titanic import read_record
from .preprocess_titanic import load_prepared
from .titanic_run import DIGEST_TAG, datasets, log_run


def experiment_id(client, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # created meanwhile by a parallel publisher
        return client.get_experiment_by_name(name).experiment_id


def is_logged(client, exp_id: str, digest: str) -> bool:
    """True when a finished run has this digest; otherwise clear what an interrupted publish left."""
    existing = client.search_runs([exp_id], filter_string=f"tags.`{DIGEST_TAG}` = '{digest}'")
    if any(run.info.status == "FINISHED" for run in existing):
        return True
    leftovers = existing + client.search_runs(
        [exp_id], filter_string=f"tags.`{iris_run.PARENT_DIGEST_TAG}` = '{digest}'")
    for run in leftovers:
        client.delete_run(run.info.run_id)
    return False


def publish(records: list[dict], sweep: dict | None, uri: str) -> dict[str, str]:
    """Log what MLflow lacks; return {name: 'logged' | 'present'}."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    outcome = {}
    exp_id = experiment_id(client, tracking.EXPERIMENT, tracking.artifact_location(uri))
    inputs = None
    for record in records:
        if is_logged(client, exp_id, record["digest"]):
            outcome[record["variant"]] = "present"
            continue
        data = load_prepared()
        inputs = inputs or datasets(data, record["data"])
        log_run(client, exp_id, record, data, inputs)
        outcome[record["variant"]] = "logged"
    if sweep is not None:
        exp_id = experiment_id(client, iris_run.EXPERIMENT, tracking.artifact_location(uri))
        logged = is_logged(client, exp_id, sweep["digest"])
        if not logged:
            iris_run.log_sweep(client, exp_id, sweep)
        outcome["iris alpha sweep"] = "present" if logged else "logged"
    return outcome


def main(params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    records = [read_record(name) for name in params.variants]
    sweep = json.loads(SWEEP_RECORD.read_text()) if SWEEP_RECORD.exists() else None
    uri = tracking.tracking_uri()
    warnings.filterwarnings("ignore", module="mlflow")
    # The pickle format is chosen on purpose (see titanic_run.log_run); its caution fills the log otherwise.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    try:
        outcome = publish(records, sweep, uri)
    except PipelineError:
        raise
    except Exception as exc:  # the store or server failed: say where, keep the training outputs
        raise PipelineError(f"publishing to MLflow at {tracking.redact(uri)} failed: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                            f"(training results are kept; run `dvc repro publish` again)") from exc
    logged = [name for name, state in outcome.items() if state == "logged"]
    print(f"publish: {len(logged)} run(s) logged, {len(outcome) - len(logged)} already in MLflow "
          f"({tracking.redact(uri)})")
