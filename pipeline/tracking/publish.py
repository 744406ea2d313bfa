"""Stage publish: each variant on each dataset becomes one MLflow run in the dataset's
experiment, each dataset's comparison report a summary run there (its champion registered under
the dataset's name), the page across datasets a run of its own, each alpha sweep a parent with a
child per alpha; once.

Training stages only write files; this stage logs whatever MLflow does not hold yet. A run
is identified by the digest of its configuration and results (tag `pipeline.digest`), so a
DVC run-cache restore, a retry after the server was down, or a second publish logs exactly
the missing runs and never one twice. Publishers that meet (teammates publishing the same
study at the same moment, parallel DVC workers) may log a run twice; `settle` keeps one by a
rule they all compute alike and points every reference at it (store.resolve, docs/team.md).
A run left half-logged by an interrupted publish (FAILED, or RUNNING with its publisher gone)
is deleted and logged again.

Under `mlflow run`, MLFLOW_RUN_ID names the launch's own run: new runs nest under it, and it
is tagged with every run it stands for, new or already there.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

from ..core import config
from ..core.figures import variant_colours
from ..core.errors import PipelineError, first_line
from ..core.catalog import SWEEP_TIMES, DatasetFiles, ReportFiles, VariantFiles
from ..core.progress import progress
from ..core.summaries import AcrossSummary, ReportSummary, read_run_times, read_sweep
from ..data.preprocess import load_prepared
from ..core.record import TrainingRecord
from ..data.splits import split_arrays
from . import across_runs, iris_runs, report_runs, served_spec, store, study_view, tuned_runs
from .variant_runs import VariantRun, datasets, log_run

SWEEP, REPORT_NAME, ACROSS_NAME = "sweep", "report", "across"
MAIN_BRANCH = "main"  # the branch whose study the registered models' `champion` alias follows


def git_branch() -> str | None:
    """The workspace's git branch ('HEAD' when detached), or None outside a git repository. A
    git that cannot say (missing, a repository it refuses to read) is taken for another branch:
    the alias then stays, rather than moving by accident."""
    import subprocess

    try:
        done = subprocess.run(["git", "symbolic-ref", "-q", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(unreadable: {type(exc).__name__})"
    if done.returncode == 0:  # on a branch (commits or not yet)
        return done.stdout.strip()
    if done.returncode == 1:
        return "HEAD"
    if "not a git repository" in done.stderr:
        return None
    return f"(unreadable: {done.stderr.strip().splitlines()[0] if done.stderr.strip() else done.returncode})"


def experiment_id(client, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            try:
                client.restore_experiment(experiment.experiment_id)
            except MlflowException:  # restored meanwhile by a parallel publisher
                pass
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # created meanwhile by a parallel publisher
        return client.get_experiment_by_name(name).experiment_id


class Launch:
    """Where this publish comes from: the run `mlflow run` opened (MLFLOW_RUN_ID) and the DVC
    experiment it runs in (DVC_EXP_NAME), if any; and the process that publishes."""

    def __init__(self, client, run_id: str | None, dvc_exp: str | None):
        self.client = client
        self.run_id = run_id
        self.experiment_id = client.get_run(run_id).info.experiment_id if run_id else None
        self.dvc_exp = dvc_exp
        self.me = store.Publisher.this()
        self.began_ms = int(time.time() * 1000)  # orders publishes on main (study_view.mark_current)

    def tags(self, exp_id: str) -> dict[str, str]:
        """Tags for a run this publish creates."""
        tags = {store.PUBLISHER_TAG: self.me.tag()}
        if self.run_id:
            tags["pipeline.launch_run_id"] = self.run_id
            if exp_id == self.experiment_id:  # the UI nests runs within one experiment only
                tags["mlflow.parentRunId"] = self.run_id
        if self.dvc_exp:
            tags["dvc.exp_name"] = self.dvc_exp
            tags[f"dvc.exp.{self.dvc_exp}"] = "logged"
        return tags

    def named(self, name: str) -> str:
        """A new run's name: a DVC experiment's runs say whose they are (study_view)."""
        return f"{name} ({self.dvc_exp})" if self.dvc_exp else name

    def champion_stays(self) -> str | None:
        """Why this publish may not move a registered model's `champion` alias, or None: it
        follows the workspace's study on the main branch only (outside git, the workspace)."""
        if self.dvc_exp:
            return f"published from the DVC experiment {self.dvc_exp}"
        if self.run_id:
            return f"published by the `mlflow run` launch {self.run_id}"
        branch = git_branch()
        if branch is None or branch == MAIN_BRANCH:
            return None
        if branch.startswith("(unreadable"):
            return f"git could not say which branch this is {branch}"
        return f"published from {'a detached HEAD' if branch == 'HEAD' else 'the git branch ' + branch}, not {MAIN_BRANCH}"

    def origin(self, stays: str | None) -> dict[str, str]:
        """Tags for a model version this publish registers: where it came from, and why it does
        not move the alias (`stays`, champion_stays's answer)."""
        tags = {"dvc.exp_name": self.dvc_exp} if self.dvc_exp else {}
        if self.run_id:
            tags["launch_run_id"] = self.run_id
        if stays:
            tags[report_runs.NOT_MOVED_TAG] = f"not moved: {stays}"
        return tags

    def name(self, runs: dict, outcome: dict[str, tuple[str, str]]) -> bool:
        """Every run this DVC experiment stands for names it: `logged` if it logged one with
        that digest, `reused` if it shares one logged earlier. True if a tag had to be set."""
        if not self.dvc_exp:
            return False
        key = f"{store.EXPERIMENT_TAGS}{self.dvc_exp}"
        wrote = False
        for name, run in runs.items():
            if key not in run.data.tags:
                self.client.set_tag(run.info.run_id, key, "reused" if outcome[name][0] == "present" else "logged")
                wrote = True
        return wrote

    def stands_for(self, runs: dict[str, tuple[str, str]]) -> bool:
        """The launch run names every run it stands for, a tag each; its note counts them (a
        line per run outgrew MLflow's 8000 characters a tag at 147 runs)."""
        if not self.run_id:
            return False
        tags = {f"pipeline.run.{name}": run_id for name, (_, run_id) in runs.items()}
        states = Counter(state for state, _ in runs.values())
        counted = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        tags["mlflow.note.content"] = (f"This launch stands for {len(runs)} runs ({counted}), each named by its "
                                       f"tag pipeline.run.<dataset>/<variant> (report, tuned/<variant>), "
                                       f"pipeline.run.across or pipeline.run.sweep.")
        return store.retag(self.client, self.client.get_run(self.run_id), tags)


def logging_order(records: list[TrainingRecord], summary: ReportSummary) -> list[TrainingRecord]:
    """MLflow's chart view draws the 10 most recent runs and hides the rest until ticked. What a
    reader looks for first is logged last: the reference and the champion, then the contrast
    pairs, then (after these) the report; the other variants before them, in params order."""
    def weight(record):
        if record.config.contrast:
            return 2
        return 1 if record.variant in (summary.reference, summary.champion) else 0

    return sorted(records, key=weight)


@dataclass
class DatasetStudy:
    """One dataset's part of a publish: its variants' training records and its report's summary."""
    dataset: str
    records: list[TrainingRecord]
    summary: ReportSummary
    settings: config.Dataset    # its params.yaml entry: how its file is read (the served model's inputs)
    tuned_records: list[TrainingRecord] = field(default_factory=list)  # the tuned study's, when it ran
    tuned: ReportSummary | None = None                                  # ... and its report's summary
    colours: dict[str, str] = field(default_factory=dict)               # every variant's (core/figures.py)

    def key(self, name: str) -> str:
        """A run's name in the outcome: <dataset>/<variant> or <dataset>/report."""
        return f"{self.dataset}/{name}"

    def champion(self) -> TrainingRecord | None:
        return next((r for r in self.records if r.variant == self.summary.champion), None)

    def runs(self) -> list[VariantRun]:
        prepared = load_prepared(self.dataset)
        files = DatasetFiles(self.dataset)
        source = json.loads(files.source.read_text()) if files.source.exists() else {}
        table = served_spec.Table.read(self.settings, self.records[0].seed)  # the seed training (and a cap) used
        rows = table.validation_rows(prepared)
        # The canonical split as its model saw it: scaled with the scaler training recorded.
        return [VariantRun(record=record, stats=self.summary.variants[record.variant], conclusion=self.summary,
                           source=source, times=read_run_times(VariantFiles(record.variant, self.dataset).run_times),
                           split=split_arrays(prepared, 0, record.scaler.model_dump() if record.scaler else None),
                           served=served_spec.spec(record, table, prepared), rows=rows,
                           colour=self.colours[record.variant],
                           place=list(self.colours).index(record.variant) + 1)
                for record in logging_order(self.records, self.summary)]


class Target:
    """One run to be there once: its name in the outcome, its experiment and digest."""

    def __init__(self, name: str, exp_id: str, digest: str, child_tag: str | None = None):
        self.name, self.exp_id, self.digest, self.child_tag = name, exp_id, digest, child_tag

    def resolve(self, client, me):
        return store.resolve(client, self.exp_id, self.digest, me, self.child_tag)


def publish(studies: list[DatasetStudy], sweep: dict | None, uri: str, report: bool = False,
            across: dict | None = None, patience: Patience | None = None, logged: dict[str, str] | None = None,
            launch_run: str | None = None, dvc_exp: str | None = None,
            tracking: config.Tracking | None = None) -> dict[str, tuple[str, str]]:
    """Log what MLflow lacks: each study's variant runs (they need its report's summary), its
    report run too with `report`, the run of the page across datasets with `across` (its
    summary; it names every study's report run), the sweep. Return {name: ('logged' | 'present'
    | 'duplicate', run_id)}, names as DatasetStudy.key gives them, 'across' and 'sweep':
    logged by this publish, there before, or logged by this one and another at the same moment
    (the other's kept). `logged` ({name: run_id}) carries what earlier attempts of this publish
    logged. The launch run and DVC experiment come from the environment unless given; `tracking`
    (params' mlflow) says whether the studies share one experiment and register champions."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    launch = Launch(client, launch_run if launch_run is not None else os.environ.get("MLFLOW_RUN_ID"),
                    dvc_exp if dvc_exp is not None else os.environ.get("DVC_EXP_NAME"))
    tracking = tracking or config.Tracking()
    publishing = Publishing(client, launch, store.artifact_location(uri), studies, report, across, sweep,
                            patience or Patience(), {} if logged is None else logged, tracking)
    for _ in range(3):  # a run found, then deleted by hand meanwhile, is logged again
        publishing.log_missing()
        try:
            return settle(client, launch, publishing.targets, publishing.outcome, studies, report, across is not None,
                          tracking)
        except Vanished:
            continue
    raise PipelineError("publish: runs were deleted while publishing, three times; run `dvc repro publish` again")


class Publishing:
    """One publish's pass over what it stands for: each run looked up by its digest, logged if
    missing; what it found and logged (the outcome) and the runs it must settle (the targets)."""

    def __init__(self, client, launch: Launch, where: str | None, studies: list[DatasetStudy], report: bool,
                 across: dict | None, sweep: dict | None, patience: Patience, logged: dict[str, str],
                 tracking: config.Tracking):
        self.client, self.launch, self.studies, self.report, self.across, self.sweep = (client, launch, studies,
                                                                                      report, across, sweep)
        self.patience, self.logged, self.shared = patience, logged, tracking.experiment
        self.exp_ids = {s.dataset: experiment_id(client, store.experiment(s.dataset, self.shared), where)
                        for s in studies}
        for study in studies if self.shared is None else ():  # a shared one's says what the page across says
            study_view.describe(client, self.exp_ids[study.dataset], study.dataset, study.summary)
        patience.answered()
        self.sweep_exp = experiment_id(client, iris_runs.EXPERIMENT, where) if sweep is not None else None
        if sweep is not None:
            study_view.describe_sweep(client, self.sweep_exp)
        self.across_exp = (experiment_id(client, store.across_experiment(self.shared), where)
                           if across is not None else None)
        if across is not None:
            study_view.describe_across(client, self.across_exp, across, self.shared)
        self.planned = {study.dataset: study.runs() for study in studies}
        self.outcome: dict[str, tuple[str, str]] = {}
        self.targets: list[Target] = []

    def log_missing(self) -> None:
        """Each study's variant runs and report run, the run across datasets and the sweep: each
        looked up, and logged unless it is there."""
        self.outcome, self.targets = {}, []
        for study in self.studies:
            self.log_study(study)
        client, across_exp, sweep_exp = self.client, self.across_exp, self.sweep_exp
        if self.across is not None and not self.look_up(Target(ACROSS_NAME, across_exp, across_runs.digest())):
            self.logs(ACROSS_NAME, across_runs.log_across(client, across_exp, self.across,
                                                          *named_by_across(self.studies, run_ids(self.outcome)),
                                                          self.launch.tags(across_exp)))
        if self.sweep is not None and not self.look_up(Target(SWEEP, sweep_exp, self.sweep["digest"],
                                                              iris_runs.PARENT_DIGEST_TAG)):
            self.logs(SWEEP, iris_runs.log_sweep(client, sweep_exp, self.sweep, read_run_times(SWEEP_TIMES),
                                                 self.launch.tags(sweep_exp)))

    def log_study(self, study: DatasetStudy) -> None:
        """A study's variant runs that MLflow lacks, then (with `report`) its report run."""
        exp_id, launch = self.exp_ids[study.dataset], self.launch
        missing = [run for run in self.planned[study.dataset]
                   if not self.look_up(Target(study.key(run.record.variant), exp_id, run.digest))]
        inputs = {}  # the canonical split as MLflow datasets, per standardize setting: made once, when needed
        named = study_view.Naming(study.dataset if self.shared else None)
        for run in progress(missing, f"publish: {study.dataset}'s variant runs"):
            standardize = run.record.config.training.standardize
            if standardize not in inputs:
                inputs[standardize] = datasets(run.split, run.source, study.dataset)
            self.logs(study.key(run.record.variant), log_run(self.client, exp_id, run, inputs[standardize],
                                                             launch.tags(exp_id),
                                                             launch.named(named(run.record.variant))))
        for record in study.tuned_records:
            stats = study.tuned.variants[record.variant]
            key = study.key(tuned_runs.key(record.variant))
            if not self.look_up(Target(key, exp_id, tuned_runs.digest(record, stats, study.tuned))):
                self.logs(key, tuned_runs.log_tuned(
                    self.client, exp_id, record, stats, study.tuned, study.colours[record.variant],
                    launch.tags(exp_id), launch.named(named(tuned_runs.run_name(record.variant)))))
        if self.report and not self.look_up(Target(study.key(REPORT_NAME), exp_id, report_runs.digest(study.dataset))):
            self.logs(study.key(REPORT_NAME), report_runs.log_report(
                self.client, exp_id, study.dataset, study.summary, variant_ids(study, run_ids(self.outcome)),
                launch.tags(exp_id), launch.named(named(study_view.REPORT_ROLE))))

    def look_up(self, target: Target) -> bool:
        """Already there (FINISHED, by its digest): noted in the outcome."""
        self.targets.append(target)
        found = target.resolve(self.client, self.launch.me)
        state = "logged" if found and self.logged.get(target.name) == found.info.run_id else "present"
        self.outcome[target.name] = (state, found.info.run_id) if found else ("missing", "")
        return found is not None

    def logs(self, name: str, run_id: str) -> None:
        self.outcome[name] = ("logged", run_id)
        self.logged[name] = run_id
        self.patience.progressed()


def run_ids(outcome: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: run_id for name, (_, run_id) in outcome.items()}


def variant_ids(study: DatasetStudy, ids: dict[str, str]) -> dict[str, str]:
    """{variant: run_id} of the study's variants, from {name: run_id}."""
    return {name: ids[study.key(name)] for name in study.summary.variants if study.key(name) in ids}


def named_by_across(studies: list[DatasetStudy], ids: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The runs the page across datasets names: each dataset's report run and champion's run."""
    reports = {s.dataset: ids[s.key(REPORT_NAME)] for s in studies if s.key(REPORT_NAME) in ids}
    champions = {s.dataset: ids[s.key(s.summary.champion)] for s in studies if s.key(s.summary.champion) in ids}
    return reports, champions


class Vanished(Exception):
    """Every run with a digest this publish stands for is gone (deleted by hand meanwhile)."""


SETTLE_PASSES = 30  # each publisher that met this one can move a survivor once; a team is fewer


def settle(client, launch: Launch, targets: list[Target], outcome: dict[str, tuple[str, str]],
           studies: list[DatasetStudy], report: bool, across: bool,
           tracking: config.Tracking | None = None) -> dict[str, tuple[str, str]]:
    """Resolve every run this publish stands for (store.resolve: the survivor of each digest,
    its duplicates deleted) and point at the survivors whatever names runs: the reports' tags
    (with `report`), each one's registered champion, the run across datasets, the DVC
    experiment's tags, the launch run; on main, which runs are current (study_view). A survivor
    moves when a publisher that met this one finishes a run with a smaller id after this one
    looked, so each pass that had to write is followed by another, until one finds nothing to
    change. The last publisher to finish a run
    looks after every run is FINISHED: what it leaves is the survivors, pointed at. A study
    whose params say `mlflow.register: false` registers no champion."""
    from mlflow.exceptions import MlflowException

    tracking = tracking or config.Tracking()

    stays = launch.champion_stays()
    origin = launch.origin(stays)
    for _ in range(SETTLE_PASSES):
        try:
            runs = {}
            for target in targets:
                runs[target.name] = target.resolve(client, launch.me)
                if runs[target.name] is None:
                    raise Vanished(target.name)
            ids = {name: run.info.run_id for name, run in runs.items()}
            final = {name: (("duplicate" if state == "logged" and run_id != ids[name] else state), ids[name])
                     for name, (state, run_id) in outcome.items()}
            wrote = launch.name(runs, final)
            reported = studies if report else []
            for study in studies if stays is None else []:
                mine = {record.variant: runs[study.key(record.variant)] for record in study.records}
                if report:
                    mine[study_view.REPORT_ROLE] = runs[study.key(REPORT_NAME)]
                wrote |= study_view.mark_current(client, next(iter(mine.values())).info.experiment_id, mine,
                                                 {*study.summary.variants, study_view.REPORT_ROLE},
                                                 launch.began_ms, study.dataset,
                                                 study_view.Naming(study.dataset if tracking.experiment else None))
            for study in reported:
                champion = study.champion()
                wrote |= store.retag(client, runs[study.key(REPORT_NAME)],
                                     report_runs.references(study.summary, variant_ids(study, ids)))
                if tracking.register:
                    wrote |= report_runs.champion_version(client, report_runs.model_name(study.settings),
                                                          ids[study.key(champion.variant)], champion,
                                                          study.summary, stays, origin)[1]
            if across:
                wrote |= store.retag(client, runs[ACROSS_NAME], across_runs.references(*named_by_across(reported, ids)))
                if stays is None:  # main's page across datasets: the across view's current run
                    wrote |= study_view.mark_current(client, runs[ACROSS_NAME].info.experiment_id,
                                                     {across_runs.RUN_NAME: runs[ACROSS_NAME]}, {across_runs.RUN_NAME},
                                                     launch.began_ms)
            wrote |= launch.stands_for(final)
            if not wrote:
                return final
        except MlflowException as exc:
            if not store.gone(exc):  # a run or version deleted under us: look again
                raise
    raise PipelineError(f"publish: the runs kept changing under {SETTLE_PASSES} passes; run `dvc repro publish` again")


class Patience:
    """How long one publish waits for the tracking server before it gives up (docs/team.md).

    A server that never answered this publish and refuses the connection is down (a wrong
    address, a stopped server): that fails at once, after MLflow's own 2 retries. One that
    answered and now refuses is taken for a restart: waited for up to RESTART_S. One that is
    busy (503 or 429, a read timeout, a connection dropped mid-request) is waited for with
    jittered exponential pauses, up to BUSY_S without a run completing. A SQLite file another
    writer holds is waited for along LOCKED_S; a get-or-create another publisher won is tried
    again at once, RACED_TRIES times. Publishing again is always safe: runs are known by their
    digests, so nothing is lost and nothing logged twice.
    """
    RESTART_S = 90   # a restart of PostgreSQL and `mlflow server` with both cores busy: 38 and 40 s (test_load)
    BUSY_S = 300     # eight publishers at once with both cores busy: done in 25 s (benchmarks/README.md)
    BUSY_CAP_S = 30  # the longest single pause
    LOCKED_S = (0.5, 1, 2, 4, 8, 15, 30)  # seconds: about a minute in all
    RACED_TRIES = 5  # MLflow get-or-creates another publisher won: trying again finds the row

    # A team whose server restarts slower (or faster) sets its own wait, in seconds.
    RESTART_ENV = "PIPELINE_PUBLISH_RESTART_S"

    def __init__(self):
        given = os.environ.get(self.RESTART_ENV)
        if given is not None:
            try:
                self.RESTART_S = float(given)
            except ValueError:
                raise PipelineError(f"{self.RESTART_ENV}={given!r}: not a number of seconds") from None
            if not self.RESTART_S >= 0:
                raise PipelineError(f"{self.RESTART_ENV}={given!r}: not a number of seconds")
        self.reached = False
        self.since: dict[str, float] = {}  # kind of failure -> when the present spell of it began
        self.tries: dict[str, int] = {}

    def answered(self) -> None:
        """The server answered: a refusal now is a restart, not a wrong address."""
        self.reached = True
        self.since.pop("down", None)
        self.tries.pop("down", None)

    def progressed(self) -> None:
        """A run completed: the server is slow, not stuck."""
        self.since.pop("busy", None)
        self.tries.pop("busy", None)

    def pause(self, kind: str | None) -> float | None:
        """Seconds to wait before publishing again after a failure of this kind, or None: give up."""
        if kind is None or (kind == "down" and not self.reached):
            return None
        now = time.monotonic()
        began = self.since.setdefault(kind, now)
        tries = self.tries[kind] = self.tries.get(kind, 0) + 1
        if kind == "locked":
            return self.LOCKED_S[tries - 1] if tries <= len(self.LOCKED_S) else None
        if kind == "raced":
            return random.uniform(0.2, 2) if tries <= self.RACED_TRIES else None
        if kind == "down":  # poll often, so that a restarted server is used soon after it is back
            pause = random.uniform(1, 3)
            return pause if now - began + pause <= self.RESTART_S else None
        step = min(self.BUSY_CAP_S, 2.0 ** tries)
        pause = step / 2 + random.uniform(0, step / 2)  # publishers that met do not come back together
        return pause if now - began + pause <= self.BUSY_S else None

    def waited(self, kind: str) -> float:
        return time.monotonic() - self.since.get(kind, time.monotonic())

    def next_pause(self, state) -> float:
        """tenacity's wait: the pause after the failed attempt, or infinity when none helps."""
        pause = self.pause(store.failure(state.outcome.exception()))
        return math.inf if pause is None else pause


# What the line before each pause says the server did, by store.failure's kind.
WAITING_FOR = {"locked": "is locked by another writer",
               "raced": "refused a row another publisher had just written",
               "down": "stopped answering (restarting?)",
               "busy": "is busy ({reason})"}


def busy_reason(exc: BaseException) -> str:
    import requests
    import urllib3

    causes = store._causes(exc)
    for code, meaning in (("503", "503 Service Unavailable"), ("429", "429 Too Many Requests"),
                          ("502", "502 Bad Gateway"), ("504", "504 Gateway Timeout")):
        # The status of answers MLflow's client gave up retrying is in urllib3's text only.
        if any(isinstance(e, urllib3.exceptions.ResponseError) and f"too many {code} error" in str(e) for e in causes):
            return meaning
    codes = {getattr(e, "error_code", None) for e in causes}
    if "TEMPORARILY_UNAVAILABLE" in codes:
        return "503 Service Unavailable"
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        return "429 Too Many Requests"
    if any(isinstance(e, (urllib3.exceptions.TimeoutError, requests.exceptions.Timeout, TimeoutError)) for e in causes):
        return "no answer within MLFLOW_HTTP_REQUEST_TIMEOUT"
    # A server worker's pool of database connections, all in use (store.failure): its text only, over REST.
    if "QueuePool limit" in " ".join(str(e) for e in causes):
        return "every database connection of the server in use"
    return "connections dropped mid-request"


def patiently(attempt, uri: str, patience: Patience):
    """attempt(), again while Patience says waiting helps; else one line that says what failed."""
    from tenacity import Retrying, retry_if_exception

    where = store.redact(uri)

    def announce(state) -> None:
        exc = state.outcome.exception()
        kind = store.failure(exc)
        said = WAITING_FOR[kind].format(reason=busy_reason(exc) if kind == "busy" else "")
        print(f"publish: {where} {said}; retrying in {state.upcoming_sleep:.1f} s", file=sys.stderr, flush=True)

    def give_up(state):
        exc = state.outcome.exception()
        if store.failure(exc) == "busy":
            raise PipelineError(f"publishing to MLflow at {where} failed: the server was overloaded "
                                f"({busy_reason(exc)}) for {patience.waited('busy'):.0f} s; nothing was lost "
                                f"(training results are kept, and runs are known by their digests): "
                                f"run `dvc repro publish` again when it is less busy") from exc
        hint = ("; with parallel workers a tracking server is the way (docs/team.md)"
                if store.failure(exc) == "locked" else "")
        raise PipelineError(f"publishing to MLflow at {where} failed: "
                            f"{first_line(exc)} "
                            f"(training results are kept; run `dvc repro publish` again{hint})") from exc

    def failed(exc: BaseException) -> bool:
        """The store or server failed: not the pipeline's own word (PipelineError), nor an interrupt."""
        return isinstance(exc, Exception) and not isinstance(exc, PipelineError)

    # Wait if that helps (Patience's policy), else say where.
    return Retrying(retry=retry_if_exception(failed), wait=patience.next_pause,
                    stop=lambda state: state.upcoming_sleep == math.inf, before_sleep=announce,
                    retry_error_callback=give_up, sleep=time.sleep)(attempt)


def _studies(params: config.Params, wanted: list[str]) -> list[DatasetStudy]:
    """Each dataset's records of the `wanted` variants with its report's summary, which must be
    made from these very results (and the tuned study's, when it runs)."""
    studies = []
    for dataset in params.datasets if wanted else ():
        records = [TrainingRecord.load(name, dataset) for name in wanted]
        tuned_records = [TrainingRecord.load(name, dataset, tuned=True) for name in wanted] \
            if params.tuning.enabled else []
        # Each variant's run carries what its dataset's report concluded about it.
        summary = ReportSummary.load(dataset)
        tuned = ReportSummary.load(dataset, tuned=True) if tuned_records else None
        for record, concluded in [*((r, summary) for r in records), *((r, tuned) for r in tuned_records)]:
            if concluded.digests.get(record.variant) != record.digest:
                files = ReportFiles(dataset)
                raise PipelineError(f"{files.tuned_summary if record.tuned else files.summary}: made from other "
                                    f"results than {VariantFiles(record.variant, dataset).results}; run "
                                    f"`dvc repro report` first")
        studies.append(DatasetStudy(dataset, records, summary, params.dataset(dataset), tuned_records, tuned,
                                    variant_colours(params.variants)))
    return studies


def _mlflow_settings() -> None:
    """MLflow's client as a publish wants it; a user's own setting of each variable wins."""
    # MLflow's own retries stay few and short, so that a stopped server fails the publish at
    # once; waiting for a busy or restarting one is Patience's. The timeout outlasts a request
    # that waits 30 s for one of the server's database connections (SQLAlchemy's pool
    # timeout): given up sooner, it is still served, and sent again.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    # MLflow's telemetry thread, when it cannot fetch its config (offline, as this pipeline is
    # meant to run), removes a variable from os.environ while a request reads os.environ for
    # proxies: a KeyError that failed one of eight publishers in the benchmark. Set before
    # MLflow is imported.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore", module="mlflow")
    # The pickle format is chosen on purpose (see variant_runs.log_run); its caution fills the log otherwise.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    # Each served model's input example is checked against its signature: a line a model otherwise.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def main(params_path: str = config.PARAMS_FILE, only: list[str] | None = None) -> None:
    """Publish every variant on every dataset, the sweep, the reports and the page across
    datasets; or `only` those named (variants, on every dataset; 'sweep', 'report', 'across')."""
    params = config.load(params_path)
    extra = (SWEEP, REPORT_NAME, ACROSS_NAME)
    names = only or [*params.variants, *extra]
    for name in names:
        if name not in params.variants and name not in extra:
            raise PipelineError(f"publish: no variant named {name!r} (known: {', '.join(params.variants)}, "
                                f"or {', '.join(extra)})")
    report, across = REPORT_NAME in names, ACROSS_NAME in names
    # A report's summary run points at every variant's run, and the page across datasets at
    # every report's and champion's: either needs them all.
    studies = _studies(params, list(params.variants) if report or across else
                       [n for n in names if n in params.variants])
    sweep = read_sweep() if SWEEP in names else None
    across_summary = AcrossSummary.load() if across else None
    uri = store.tracking_uri(params.mlflow.store)
    _mlflow_settings()
    # Read once: MLflow's end_run clears MLFLOW_RUN_ID, and a retry must still nest under the launch.
    launch_run, dvc_exp = os.environ.get("MLFLOW_RUN_ID", ""), os.environ.get("DVC_EXP_NAME", "")
    patience, logged = Patience(), {}
    outcome = patiently(lambda: publish(studies, sweep, uri, report=report or across, across=across_summary,
                                        patience=patience, logged=logged, launch_run=launch_run, dvc_exp=dvc_exp,
                                        tracking=params.mlflow),
                        uri, patience)
    where = store.redact(uri)
    counts = {state: sum(1 for s, _ in outcome.values() if s == state) for state in ("logged", "present", "duplicate")}
    met = (f", {counts['duplicate']} of them logged at the same moment by another publisher too (kept once)"
           if counts["duplicate"] else "")
    print(f"publish: {counts['logged']} run(s) logged, {counts['present'] + counts['duplicate']} already in MLflow"
          f"{met} ({where})")
