"""Where runs go, and how each run stays there once: the MLflow store, without importing MLflow
at module level.

Default: SQLite in the repository's root with artifacts beside it. DVC runs queued
experiments in temporary copies of the repo; DVC_ROOT points back at the real one, so every
copy logs to the same store. MLFLOW_TRACKING_URI overrides all of it (a team server).

Each run once, with any number of publishers at the same moment (docs/team.md, "Publishing at
the same moment"): a run is known by its digest (tag `pipeline.digest`). MLflow has no unique
constraint or compare-and-set on tags, so two publishers of the same study may both log it;
`resolve` keeps one. Of the FINISHED runs with a digest the one with the smallest run id
survives, a total order every publisher computes alike; the others are deleted, whoever
logged them (they are complete: nobody logs into them any more). A run that is not FINISHED
is deleted only once nobody can still be logging into it: FAILED, or RUNNING and left by this
process, by a process of this machine that has exited, or (another machine) for longer than
STALE_S.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

# An experiment per dataset (docs/mlflow.md says why): Titanic's is the study's first,
# titanic-loss-functions, and the others are named alike; the page across them has its own.
# A study whose params name one experiment (mlflow.experiment: the benchmark's) puts all of them there.
ACROSS_EXPERIMENT = "loss-functions-across-datasets"


def experiment(dataset: str, shared: str | None = None) -> str:
    return shared or f"{dataset}-loss-functions"


def across_experiment(shared: str | None = None) -> str:
    return shared or ACROSS_EXPERIMENT


DIGEST_TAG = "pipeline.digest"
PUBLISHER_TAG = "pipeline.publisher"
PARENT_TAG = "mlflow.parentRunId"
# Which DVC experiments a run stands for (publish.Launch); kept when a duplicate is deleted.
EXPERIMENT_TAGS = "dvc.exp."
# How long another machine's publisher can still be logging a run: a publish gives up on a
# server that stays unreachable or overloaded within minutes (publish.Patience), and a run is
# under a hundred requests (a variant's, with its model, about 55), each of at most 3 tries
# of 60 s (MLFLOW_HTTP_REQUEST_TIMEOUT): 5 hours if every one of them timed out twice. A run
# another machine has held RUNNING for a day is abandoned.
STALE_S = 24 * 3600


def project_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri(store: str = "mlflow.db") -> str:
    """MLFLOW_TRACKING_URI, else the SQLite file `store` (params' mlflow.store) in the project."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store}"
    # A relative SQLite path (`mlflow run` passes sqlite:///mlflow.db) means the project's root,
    # not whichever temporary copy DVC runs a stage in.
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(project_root() / uri[len('sqlite:///'):]).resolve()}"
    return uri


def sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite store's URI; None for any other store."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite file; a server chooses its own (None)."""
    database = sqlite_file(uri)
    return None if database is None else (database.parent / "mlartifacts").as_uri()


def redact(uri: str) -> str:
    """The URI without a password, fit to print."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


class Closing:
    """A run being logged; see closing_run."""

    def __init__(self, client, run_id: str):
        self.client, self.run_id, self.final = client, run_id, False

    def ending(self) -> None:
        """The next request ends the run FINISHED. If it fails, the run is not marked FAILED:
        the request may have arrived all the same, and a FINISHED run may already be the
        survivor another publisher chose. Left RUNNING, it is abandoned as this process's."""
        self.final = True

    def finish(self, **kwargs) -> None:
        self.ending()
        self.client.set_terminated(self.run_id, "FINISHED", **kwargs)


def retag(client, run, tags: dict[str, str]) -> bool:
    """Set the tags `run` holds otherwise (a run naming others, pointed at the survivors when
    publishers met); True if one had to change."""
    from mlflow.entities import RunTag
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    # MLflow truncates a longer value, which would then differ from `tags` at every look.
    too_long = [k for k, v in tags.items() if len(v) > MAX_TAG_VAL_LENGTH]
    if too_long:
        raise ValueError(f"tag {too_long[0]}: over MLflow's {MAX_TAG_VAL_LENGTH} characters")
    stale = [RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]
    if stale:
        client.log_batch(run.info.run_id, tags=stale)
    return bool(stale)


@contextlib.contextmanager
def closing_run(client, run_id: str):
    """A run whose logging fails or is interrupted is marked FAILED, not left RUNNING; the next
    publish deletes it and logs it again. (After a SIGKILL, or with the server gone, it stays
    RUNNING: see `abandoned`.) End it with `finish()` (or `ending()` before MLflow ends it)."""
    closing = Closing(client, run_id)
    try:
        yield closing
    except BaseException:
        if not closing.final:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
        raise


def _started(pid: int) -> str:
    """When a process started, in clock ticks since boot as /proc/<pid>/stat counts them ('' if
    it does not exist): a pid reused by a later process has another start. psutil gives seconds
    since the epoch, which move when the clock is set (NTP); less the boot time, moved alike, it
    is the time since boot, so the tag keeps the unit it always had."""
    import psutil

    try:
        since_boot = psutil.Process(pid).create_time() - psutil.boot_time()
    except psutil.NoSuchProcess:
        return ""
    return str(round(since_boot * os.sysconf("SC_CLK_TCK")))


def _machine() -> str:
    """This boot of this kernel and this pid namespace: processes that share it see each
    other's /proc ('' where that is not known). psutil names neither: its boot_time() moves when
    the clock is set (the kernel derives it from the clock), the boot id does not; and it has no
    API for the pid namespace, so both are read from /proc here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


@dataclass(frozen=True)
class Publisher:
    """The process that logs a run, as the run's `pipeline.publisher` tag records it."""
    host: str
    machine: str
    pid: int
    started: str
    at: int = 0  # when it created the run, ms since the epoch

    @classmethod
    def this(cls) -> Publisher:
        return cls(socket.gethostname(), _machine(), os.getpid(), _started(os.getpid()))

    def tag(self) -> str:
        return json.dumps({**asdict(self), "at": int(time.time() * 1000)}, separators=(",", ":"))

    @classmethod
    def parse(cls, value: str | None) -> Publisher | None:
        try:
            return cls(**json.loads(value))
        except (TypeError, ValueError):
            return None

    def same_process(self, other: Publisher) -> bool:
        return (self.host, self.machine, self.pid, self.started) == (other.host, other.machine, other.pid,
                                                                     other.started)

    def exited(self) -> bool:
        """Only for a process of this machine: it is gone (or its pid is another process's now)."""
        import psutil

        try:
            return not self.started or _started(self.pid) != self.started
        except psutil.AccessDenied:  # it runs, its start hidden from this user: it may still be logging
            return False


def abandoned(run, me: Publisher, now_ms: int | None = None) -> bool:
    """Nobody can still be logging into this run that is not FINISHED."""
    if run.info.status in ("FAILED", "KILLED"):  # its publisher marked it so and stopped
        return True
    if run.info.status == "FINISHED":
        return False
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    owner = Publisher.parse(run.data.tags.get(PUBLISHER_TAG))
    if owner is None:  # logged before runs named their publisher
        return now_ms - (run.info.start_time or 0) > STALE_S * 1000
    if owner.same_process(me):  # an earlier attempt of this publish, or a create retried by the client
        return True
    if owner.machine and owner.machine == me.machine:
        return owner.exited()
    return now_ms - owner.at > STALE_S * 1000


def gone(exc: Exception) -> bool:
    """The run (or model version) a request named was deleted meanwhile, by another publisher."""
    code = getattr(exc, "error_code", "")
    # A deleted run that is written to is an INVALID_PARAMETER_VALUE like any bad argument, over
    # REST and on a local store alike (SqlAlchemyStore._check_run_is_active, MLflow 3.17.2): its
    # text is all that tells them apart.
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE"
                                                 and "must be in the 'active' state" in str(exc))


# A unique constraint refused an insert: SQLite's extended codes (a unique index, a primary key)
# and PostgreSQL's SQLSTATE for unique_violation (psycopg2's errors.UniqueViolation).
_SQLITE_UNIQUE = (2067, 1555)  # SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
_PG_UNIQUE = "23505"
# Through a tracking server the database's error arrives as the text of a RestException whose
# code (BAD_REQUEST or INTERNAL_ERROR) says nothing more: MLflow's handlers serialize only the
# code and the message (server/handlers.catch_mlflow_exception, 3.17.2).
_UNIQUE_TEXTS = ("UniqueViolation", "duplicate key value violates unique constraint", "UNIQUE constraint failed")


def raced(exc: BaseException) -> bool:
    """MLflow's get-or-create of a shared row (a dataset, an alias) met a publisher inserting or
    replacing the same row: the store refused the second write, and trying again finds the row. Or model
    versions created at the same moment took the same number three times, which MLflow answers
    with a 500 ("Model Version creation error ... Giving up after 3 attempts")."""
    if any(getattr(e, "sqlite_errorcode", None) in _SQLITE_UNIQUE or getattr(e, "pgcode", None) == _PG_UNIQUE
           for e in _causes(exc)):  # a local store: the driver's error is the MlflowException's cause
        return True
    text = str(exc)
    # "Model Version creation error" is raised after MLflow's retry loop, with no cause and the
    # generic INTERNAL_ERROR (model_registry/sqlalchemy_store.create_model_version, 3.17.2); over
    # REST its 500s exhaust the client's retries, and urllib3's ResponseError names the status in
    # its text only ("too many 500 error responses"), the endpoint in the URL.
    # Two publishers moving the champion's alias at once: the server's SQLAlchemy finds the row
    # the other just replaced (StaleDataError, sent as text only; seen in tests/test_load.py's
    # eight publishers). Setting the alias again finds the row.
    stale_alias = "registered_model_aliases" in text and "expected to update" in text
    return stale_alias or any(s in text for s in (*_UNIQUE_TEXTS, "Model Version creation error")) or (
        "model-versions/create" in text and "too many 500 error responses" in text)


def again_if_raced(call, *args, tries: int = 3, **kwargs):
    """call(*args, **kwargs), tried again while it loses such a race, after a random pause so
    that the publishers that met do not meet again."""
    from mlflow.exceptions import MlflowException
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    return Retrying(retry=retry_if_exception(lambda exc: isinstance(exc, MlflowException) and raced(exc)),
                    wait=lambda state: random.uniform(0.1, 1.0) * state.attempt_number,
                    stop=stop_after_attempt(tries), reraise=True)(call, *args, **kwargs)


def _search(client, experiment_id: str, key: str, value: str) -> list:
    return list(client.search_runs([experiment_id], filter_string=f"tags.`{key}` = '{value}'"))


def remove(client, experiment_id: str, run_id: str, children: bool = False) -> None:
    """Delete a run: first its children (a sweep's alphas), then the models it logged, then the
    run, so that an interrupted removal leaves a parent through which the next one finds the rest."""
    from mlflow.exceptions import MlflowException

    doomed = [child.info.run_id for child in _search(client, experiment_id, PARENT_TAG, run_id)] if children else []
    for model in client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
        with contextlib.suppress(MlflowException):
            client.delete_logged_model(model.model_id)
    for doomed_id in [*doomed, run_id]:
        try:
            client.delete_run(doomed_id)
        except MlflowException as exc:
            if not gone(exc):
                raise


def resolve(client, experiment_id: str, digest: str, me: Publisher, child_tag: str | None = None):
    """The run that stands for this digest: the FINISHED one with the smallest run id, once the
    other FINISHED ones (duplicates from publishers that met) and the abandoned ones are
    deleted; None when no run with this digest is FINISHED. `child_tag` names the tag by which
    a parent's children carry its digest: they go with their parent."""
    for _ in range(10):  # a survivor deleted under us (a smaller one finished): look again
        # The children first: a child seen here has a parent that the search below sees too,
        # unless it is gone, so a live publisher's newest child is never taken for an orphan.
        children = _search(client, experiment_id, child_tag, digest) if child_tag else []
        runs = _search(client, experiment_id, DIGEST_TAG, digest)
        finished = sorted((r for r in runs if r.info.status == "FINISHED"), key=lambda r: r.info.run_id)
        survivor = finished[0] if finished else None
        try:
            for loser in finished[1:]:
                _keep_experiment_tags(client, survivor, loser)
                remove(client, experiment_id, loser.info.run_id, children=bool(child_tag))
        except Exception as exc:
            if gone(exc):
                continue
            raise
        for run in runs:
            if run.info.status != "FINISHED" and abandoned(run, me):
                remove(client, experiment_id, run.info.run_id, children=bool(child_tag))
        parents = {run.info.run_id for run in runs}
        for child in children:
            parent = child.data.tags.get(PARENT_TAG)
            # An orphan (its parent deleted), or a duplicate from a retried request under a
            # parent that is complete (no child of a FINISHED parent is still being logged).
            if parent not in parents or (survivor is not None and parent == survivor.info.run_id
                                         and child.info.status != "FINISHED"):
                remove(client, experiment_id, child.info.run_id)
        return survivor
    raise RuntimeError(f"the runs with digest {digest[:12]} kept changing while publishing")


def _keep_experiment_tags(client, survivor, loser) -> None:
    """The DVC experiments a deleted duplicate stood for are named on its survivor."""
    from mlflow.entities import RunTag

    tags = [RunTag(k, v) for k, v in loser.data.tags.items()
            if k.startswith(EXPERIMENT_TAGS) and k not in survivor.data.tags]
    if tags:
        client.log_batch(survivor.info.run_id, tags=tags)
        survivor.data.tags.update({t.key: t.value for t in tags})


# What a failed request says about the server, for publish.Patience: "down" (nothing listens:
# a refused connection, or none within the connect timeout), "busy" (it answered 503 or 429,
# or not within the read timeout, or dropped the connection mid-request, as a restarting
# server does), "locked" (a SQLite file another writer holds), "raced" (a get-or-create that
# again_if_raced does not cover lost to another publisher).
BUSY_CODES = ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED")


def _causes(exc: BaseException):
    """The exception, what it was raised from or during, and what requests and urllib3 wrapped
    inside (MLflow re-raises their errors as an MlflowException with the text only)."""
    seen, todo = [], [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None),
                 *(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))]
    return seen


def _sqlite_busy(e: BaseException) -> bool:
    """SQLite's "database is locked": SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes too."""
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (5, 6)


def failure(exc: BaseException) -> str | None:
    """'down', 'busy', 'locked', 'raced' or None (anything else: not worth waiting for)."""
    import requests
    import sqlalchemy
    import urllib3

    causes = _causes(exc)
    text = " ".join(str(e) for e in causes)
    # A local SQLite store's error is the cause of MLflow's (a TEMPORARILY_UNAVAILABLE); a
    # server on SQLite sends it as text under the same code, which is also a busy server's.
    if any(_sqlite_busy(e) for e in causes) or "database is locked" in text:
        return "locked"
    if any(raced(e) for e in causes):
        return "raced"
    if any(getattr(e, "error_code", None) in BUSY_CODES for e in causes):
        return "busy"
    # MLflow's client retried 429 and 5xx answers and gave up: urllib3's ResponseError says which
    # status in its text only ("too many 503 error responses"; urllib3 2.x keeps no status).
    if any(isinstance(e, urllib3.exceptions.ResponseError)
           and any(f"too many {code} error responses" in str(e) for code in (429, 502, 503, 504)) for e in causes):
        return "busy"
    # Every database connection of a server worker in use for 30 s: locally SQLAlchemy's
    # TimeoutError; from a server, a 400 whose text alone says so.
    if any(isinstance(e, sqlalchemy.exc.TimeoutError) for e in causes) or "QueuePool limit" in text:
        return "busy"
    if any(isinstance(e, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
           for e in causes):
        return "down"
    if any(isinstance(e, (urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout,
                          urllib3.exceptions.ProtocolError)) for e in causes):
        return "busy"
    return None
