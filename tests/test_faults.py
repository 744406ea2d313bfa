"""Interrupting a real `dvc repro` (Ctrl-C, SIGKILL), then running it again: it finishes, and
MLflow holds every run once, none stuck as RUNNING."""
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .conftest import sh, store_runs

pytestmark = pytest.mark.slow


def interrupt(repo: Path, when: str | None, how: signal.Signals, delay: float = 0.0, ready=None) -> str:
    """Start `dvc repro`, wait for a line containing `when` (if given) and for `ready()` to be true
    (if given), then `delay` seconds, then send `how` to its whole group."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # As typed in a terminal: a runner started in the background (`cmd &` without job control)
    # hands its children SIGINT ignored, and an ignored SIGINT stays ignored down the tree.
    process = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while not ((when is None or any(when in line for line in list(seen))) and (ready is None or ready())):
        assert process.poll() is None and time.monotonic() < deadline, "".join(seen)
        time.sleep(0.02)
    time.sleep(delay)
    os.killpg(process.pid, how)
    process.wait(timeout=120)
    reader.join(timeout=30)
    return "".join(seen)


def stage_running(command: str):
    """True once a process runs `python -m pipeline <command>` (DVC's output is buffered, so the
    process itself says when a stage has started)."""
    def ready() -> bool:
        wanted = b"\0".join([b"-m", b"pipeline", *command.encode().split()]) + b"\0"
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if wanted in cmdline.read_bytes():
                    return True
            except OSError:
                continue
        return False
    return ready


def slower(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 60  # long enough to be interrupted mid-stage
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def assert_every_run_once(repo: Path) -> None:
    runs = store_runs(repo)
    names = [run.info.run_name for run in runs]
    assert sorted(names) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    assert all(run.info.status == "FINISHED" for run in runs)
    sweep = store_runs(repo, "iris-alpha-sweep")
    assert all(run.info.status == "FINISHED" for run in sweep)
    assert len([r for r in sweep if "mlflow.parentRunId" not in r.data.tags]) == 1


def test_ctrl_c_during_training_then_repro(repo):
    slower(repo)
    out = interrupt(repo, None, signal.SIGINT, 0.5, ready=stage_running("train titanic"))
    assert "publish:" not in out
    assert not (repo / "mlflow.db").exists() or not store_runs(repo)
    again = sh(repo, "dvc", "repro")
    # What the interrupted stage finished is kept; the rest trains now.
    assert "Running stage 'train@titanic'" in again and ": training (" in again
    assert_every_run_once(repo)


def first_run_created(repo: Path):
    def ready() -> bool:
        database = repo / "mlflow.db"
        if not database.exists():
            return False
        with contextlib.closing(sqlite3.connect(database, timeout=1)) as connection:
            try:
                return connection.execute("select count(*) from runs").fetchone()[0] > 0
            except sqlite3.OperationalError:  # tables not created yet, or locked
                return False
    return ready


def test_sigkill_during_publish_then_repro(repo):
    out = interrupt(repo, "Running stage 'publish'", signal.SIGKILL, ready=first_run_created(repo))
    assert "publish: " not in out  # killed before it finished
    left = store_runs(repo)
    assert left and any(run.info.status == "RUNNING" for run in left)  # killed mid-run
    again = sh(repo, "dvc", "repro")
    assert "Running stage 'publish'" in again
    assert_every_run_once(repo)
