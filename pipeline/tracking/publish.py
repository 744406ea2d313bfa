"""Stage publish: each Titanic variant becomes one MLflow run, each alpha sweep a parent with a
child per alpha, the comparison report a summary run; once.

Training stages only write files; this stage logs whatever MLflow does not hold yet. A run
is identified by the digest of its configuration and results (tag `pipeline.digest`), so a
DVC run-cache restore, a retry after the server was down, or a second publish logs exactly
the missing runs and never one twice. A run left half-logged by an interrupted publish
(still RUNNING, or FAILED) is deleted and logged again.

Under `mlflow run`, MLFLOW_RUN_ID names the launch's own run: new runs nest under it, and it
is tagged with every run it stands for, new or already there.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings

from .. import config
from ..errors import PipelineError
from ..catalog import SUMMARY, TITANIC_SOURCE, VariantFiles
from ..progress import progress
from ..records import read_report_summary, read_run_times, read_sweep
from ..titanic.preprocess import load_prepared
from ..titanic.record import TrainingRecord
from ..titanic.splits import split_arrays
from . import iris_runs, report_runs, store
from .titanic_runs import DIGEST_TAG, VariantRun, datasets, log_run

SWEEP, REPORT_NAME = "sweep", "report"
LOCKED_RETRIES = (0.5, 1, 2, 4, 8, 15, 30)  # seconds: about a minute in all


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


def logged_run(client, exp_id: str, digest: str) -> str | None:
    """The finished run with this digest; otherwise clear what an interrupted publish left, None."""
    existing = client.search_runs([exp_id], filter_string=f"tags.`{DIGEST_TAG}` = '{digest}'")
    for run in existing:
        if run.info.status == "FINISHED":
            return run.info.run_id
    leftovers = existing + client.search_runs(
        [exp_id], filter_string=f"tags.`{iris_runs.PARENT_DIGEST_TAG}` = '{digest}'")
    for run in leftovers:
        client.delete_run(run.info.run_id)
    return None


class Launch:
    """Where this publish comes from: the run `mlflow run` opened (MLFLOW_RUN_ID) and the DVC
    experiment it runs in (DVC_EXP_NAME), if any."""

    def __init__(self, client):
        self.client = client
        self.run_id = os.environ.get("MLFLOW_RUN_ID")
        self.experiment_id = client.get_run(self.run_id).info.experiment_id if self.run_id else None
        self.dvc_exp = os.environ.get("DVC_EXP_NAME")

    def tags(self, exp_id: str) -> dict[str, str]:
        """Tags for a run this publish creates."""
        tags = {}
        if self.run_id:
            tags["pipeline.launch_run_id"] = self.run_id
            if exp_id == self.experiment_id:  # the UI nests runs within one experiment only
                tags["mlflow.parentRunId"] = self.run_id
        if self.dvc_exp:
            tags["dvc.exp_name"] = self.dvc_exp
            tags[f"dvc.exp.{self.dvc_exp}"] = "logged"
        return tags

    def reused(self, run_id: str) -> None:
        """A run this DVC experiment shares with earlier ones (not logged again) still names it."""
        if self.dvc_exp:
            self.client.set_tag(run_id, f"dvc.exp.{self.dvc_exp}", "reused")

    def stands_for(self, runs: dict[str, tuple[str, str]]) -> None:
        if not self.run_id:
            return
        from mlflow.entities import RunTag

        lines = [f"- {name}: run {run_id} ({state})" for name, (state, run_id) in runs.items()]
        tags = [RunTag(f"pipeline.run.{name}", run_id) for name, (_, run_id) in runs.items()]
        tags.append(RunTag("mlflow.note.content", "This launch stands for these runs:\n\n" + "\n".join(lines)))
        self.client.log_batch(self.run_id, tags=tags)


def logging_order(records: list[TrainingRecord], summary: dict) -> list[TrainingRecord]:
    """MLflow's chart view draws the 10 most recent runs and hides the rest until ticked. What a
    reader looks for first is logged last: the reference and the champion, then the contrast
    pairs, then (after these) the report; the other variants before them, in params order."""
    def weight(record):
        if record.config.contrast:
            return 2
        return 1 if record.variant in (summary["reference"], summary["champion"]) else 0

    return sorted(records, key=weight)


def variant_runs(records: list[TrainingRecord], summary: dict) -> list[VariantRun]:
    prepared = load_prepared()
    source = json.loads(TITANIC_SOURCE.read_text()) if TITANIC_SOURCE.exists() else {}
    # The canonical split as its model saw it: scaled with the scaler training recorded.
    return [VariantRun(record=record, stats=summary["variants"][record.variant], conclusion=summary,
                       source=source, times=read_run_times(record.variant),
                       split=split_arrays(prepared, 0, record.scaler.model_dump() if record.scaler else None))
            for record in logging_order(records, summary)]


def publish(records: list[TrainingRecord], sweep: dict | None, summary: dict | None, uri: str,
            report: bool = False) -> dict[str, tuple[str, str]]:
    """Log what MLflow lacks (the variants' runs need the report's summary; `report` logs its own
    run too); return {name: ('logged' | 'present', run_id)}."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    launch = Launch(client)
    outcome: dict[str, tuple[str, str]] = {}
    exp_id = experiment_id(client, store.EXPERIMENT, store.artifact_location(uri))
    missing = []
    for run in variant_runs(records, summary) if records else []:
        name = run.record.variant
        run_id = logged_run(client, exp_id, run.digest)
        if run_id:
            outcome[name] = ("present", run_id)
            launch.reused(run_id)
        else:
            missing.append(run)
            outcome[name] = ("missing", "")  # keeps the logging order in the outcome
    inputs = {}  # the canonical split as MLflow datasets, per standardize setting: made once, when needed
    for run in progress(missing, "publish: variant runs"):
        standardize = run.record.config.training.standardize
        if standardize not in inputs:
            inputs[standardize] = datasets(run.split, run.source)
        outcome[run.record.variant] = ("logged", log_run(client, exp_id, run, inputs[standardize],
                                                         launch.tags(exp_id)))
    if report:
        run_id = logged_run(client, exp_id, report_runs.digest())
        if run_id:
            outcome[REPORT_NAME] = ("present", run_id)
            launch.reused(run_id)
        else:
            variant_ids = {name: run_id for name, (_, run_id) in outcome.items()}
            outcome[REPORT_NAME] = ("logged", report_runs.log_report(client, exp_id, summary, variant_ids,
                                                                    launch.tags(exp_id)))
        champion = next(r for r in records if r.variant == summary["champion"])
        report_runs.register_champion(client, outcome[champion.variant][1], champion, summary)
    if sweep is not None:
        sweep_exp = experiment_id(client, iris_runs.EXPERIMENT, store.artifact_location(uri))
        run_id = logged_run(client, sweep_exp, sweep["digest"])
        if run_id:
            outcome[SWEEP] = ("present", run_id)
            launch.reused(run_id)
        else:
            outcome[SWEEP] = ("logged", iris_runs.log_sweep(client, sweep_exp, sweep, read_run_times(SWEEP),
                                                           launch.tags(sweep_exp)))
    launch.stands_for(outcome)
    return outcome


def main(params_path: str = config.PARAMS_FILE, only: list[str] | None = None) -> None:
    """Publish every variant, the sweep and the report; or `only` those named (variants, 'sweep', 'report')."""
    params = config.load(params_path)
    names = only or [*params.variants, SWEEP, REPORT_NAME]
    for name in names:
        if name not in params.variants and name not in (SWEEP, REPORT_NAME):
            raise PipelineError(f"publish: no variant named {name!r} (known: {', '.join(params.variants)}, "
                                f"or {SWEEP}, {REPORT_NAME})")
    report = REPORT_NAME in names
    # The report's summary run points at every variant's run, so it needs them all.
    wanted = list(params.variants) if report else [n for n in names if n in params.variants]
    records = [TrainingRecord.load(name) for name in wanted]
    sweep = read_sweep() if SWEEP in names else None
    # Each variant's run carries what the report concluded about it.
    summary = read_report_summary() if records else None
    for record in records:
        if summary["digests"].get(record.variant) != record.digest:
            raise PipelineError(f"{SUMMARY}: made from other results than {VariantFiles(record.variant).results}; "
                                f"run `dvc repro report` first")
    uri = store.tracking_uri()
    # A stopped server must fail the publish in bounded time, not after MLflow's default
    # minutes of retries; a user's own settings win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    warnings.filterwarnings("ignore", module="mlflow")
    # The pickle format is chosen on purpose (see titanic_run.log_run); its caution fills the log otherwise.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    for pause in [*LOCKED_RETRIES, None]:
        try:
            outcome = publish(records, sweep, summary, uri, report=report)
            break
        except PipelineError:
            raise
        except Exception as exc:  # the store or server failed: say where, keep the training outputs
            if pause is not None and "database is locked" in str(exc):
                # Parallel DVC workers share one SQLite file. Publishing is idempotent (digests),
                # so waiting and publishing again loses nothing and logs nothing twice.
                print(f"publish: {store.redact(uri)} is locked by another writer; "
                      f"retrying in {pause:g} s", file=sys.stderr)
                time.sleep(pause)
                continue
            hint = ("; with parallel workers a tracking server is the way (docs/team.md)"
                    if "database is locked" in str(exc) else "")
            raise PipelineError(f"publishing to MLflow at {store.redact(uri)} failed: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                                f"(training results are kept; run `dvc repro publish` again{hint})") from exc
    logged = [name for name, (state, _) in outcome.items() if state == "logged"]
    print(f"publish: {len(logged)} run(s) logged, {len(outcome) - len(logged)} already in MLflow "
          f"({store.redact(uri)})")
