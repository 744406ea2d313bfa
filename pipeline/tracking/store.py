"""Where runs go: the MLflow store, resolved without importing MLflow.

Default: SQLite in the repository's root with artifacts beside it. DVC runs queued
experiments in temporary copies of the repo; DVC_ROOT points back at the real one, so every
copy logs to the same store. MLFLOW_TRACKING_URI overrides all of it (a team server).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import urlparse

EXPERIMENT = "titanic-loss-functions"


def project_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
    # A relative SQLite path (`mlflow run` passes sqlite:///mlflow.db) means the project's root,
    # not whichever temporary copy DVC runs a stage in.
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{project_root() / uri[len('sqlite:///'):]}"
    return uri


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite file; a server chooses its own (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///"):])
    return (database.parent / "mlartifacts").as_uri()


def redact(uri: str) -> str:
    """The URI without a password, fit to print."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


@contextlib.contextmanager
def closing_run(client, run_id: str):
    """A run whose logging fails or is interrupted is marked FAILED, not left RUNNING; the next
    publish deletes it and logs it again. (After a SIGKILL it stays RUNNING until then.)"""
    try:
        yield run_id
    except BaseException:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        raise
