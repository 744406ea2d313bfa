"""Many publishers at once against a team server, on a busy machine: what the concurrency and
load tests (tests/test_team.py, tests/test_load.py) and the publishing benchmark
(benchmarks/publish_load.py) share.

Each publisher is a process that imports what publishing needs, says it is ready, waits at a
barrier (a file) and then runs `python -m pipeline publish` in-process (`pipeline.__main__`,
the same code and exit code), once per round; so all of them start publishing within
milliseconds of each other, which is when publishers meet. Every HTTP request it makes
(MLflow's retries included) is timed and written, with the exit code and output, to a file
per round.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

PUBLISHER = r"""
import atexit, contextlib, io, json, os, sys, time
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as publish.main does, before MLflow is imported
import pipeline  # first, as `python -m pipeline` imports it: it pins the numerics before torch loads
import requests.adapters
import mlflow, mlflow.pytorch, torch  # the slow imports, before the barrier
import pipeline.tracking.publish
from pipeline.__main__ import main

timings, server = [], os.environ["MLFLOW_TRACKING_URI"]
send = requests.adapters.HTTPAdapter.send

def timed(self, request, *args, **kwargs):
    start = time.perf_counter()
    outcome = "error"
    try:
        response = send(self, request, *args, **kwargs)
        outcome = response.status_code
        return response
    finally:
        if request.url.startswith(server):  # not MLflow's telemetry and the like
            timings.append([request.method, request.path_url.split("?")[0], outcome, time.perf_counter() - start])

requests.adapters.HTTPAdapter.send = timed
barrier, rounds = os.environ["PUBLISH_BARRIER"], int(os.environ.get("PUBLISH_ROUNDS", "1"))
for round in range(rounds):
    open(f"{barrier}.{round}.ready.{os.getpid()}", "w").close()
    deadline = time.monotonic() + 600
    while not os.path.exists(f"{barrier}.{round}") and time.monotonic() < deadline:
        time.sleep(0.005)
    timings.clear()
    out, err = io.StringIO(), io.StringIO()
    started, cpu = time.time(), sum(os.times()[:2])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["publish"])
    done = f"{barrier}.{round}.done.{os.getpid()}"
    with open(done + ".tmp", "w") as f:
        json.dump({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(), "started": started,
                   "ended": time.time(), "timings": timings, "cpu": sum(os.times()[:2]) - cpu}, f)
    os.replace(done + ".tmp", done)
"""


@dataclass
class Result:
    """One publisher's round."""
    rc: int
    stdout: str
    stderr: str
    started: float
    ended: float
    timings: list  # [method, path, status or "error", seconds] per request
    cpu: float     # the process's CPU seconds (user + system) in this round's publish


def copies(study: Path, base: Path, count: int, distinct: int = 1) -> list[Path]:
    """`count` copies of a finished study (its outputs, no DVC cache, no git); the first
    `distinct` each with a report of its own (study.margin changed, `python -m pipeline report`
    run again), so that their runs have other digests; the rest repeat those in turn."""
    made = []
    for i in range(count):
        target = base / f"publisher-{i}"
        shutil.copytree(study, target, ignore=_not_needed)
        made.append(target)
    for i in range(1, distinct):
        params = yaml.safe_load((made[i] / "params.yaml").read_text())
        params["study"]["margin"] = round(params["study"]["margin"] + 0.001 * i, 6)
        (made[i] / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        done = subprocess.run([sys.executable, "-m", "pipeline", "report"], cwd=made[i], env=environment(made[i]),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    for i in range(distinct, count):  # repeat the distinct ones: publishers of the same study meet
        source = made[i % distinct]
        shutil.rmtree(made[i])
        shutil.copytree(source, made[i])
    return made


def _not_needed(folder: str, names: list[str]) -> set[str]:
    skip = {".git", "mlflow.db", "mlartifacts", "__pycache__"}
    if Path(folder).name == ".dvc":
        skip |= {"cache", "tmp"}
    return skip & set(names)


def environment(folder: Path, **extra) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(folder), **extra}
    env.pop("DVC_ROOT", None)
    return env


class Publishers:
    """One publisher process per folder, publishing to `uri` in `rounds` rounds."""

    def __init__(self, folders: list[Path], uri: str, work: Path, rounds: int = 1, **env):
        self.folders, self.rounds, self.barrier = folders, rounds, str(work / "barrier")
        self.logs = [work / f"publisher-{i}.log" for i in range(len(folders))]
        self.processes = []
        for folder, log in zip(folders, self.logs):
            with open(log, "w") as err:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", PUBLISHER], cwd=folder, stdout=subprocess.DEVNULL, stderr=err,
                    env=environment(folder, MLFLOW_TRACKING_URI=uri, PUBLISH_BARRIER=self.barrier,
                                    PUBLISH_ROUNDS=str(rounds), **env)))

    def _files(self, round: int, kind: str) -> list[Path]:
        return [Path(f"{self.barrier}.{round}.{kind}.{p.pid}") for p in self.processes]

    def _wait(self, files: list[Path], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(f.exists() for f in files):
            dead = [log for p, f, log in zip(self.processes, files, self.logs) if p.poll() is not None and not f.exists()]
            if dead or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"publishers not there within {timeout:.0f} s: "
                                     + "; ".join(log.read_text()[-2000:] for log in dead))
            time.sleep(0.05)

    def start(self, round: int = 0, timeout: float = 300) -> None:
        """Once every publisher is ready for this round: all of them at once."""
        self._wait(self._files(round, "ready"), timeout)
        Path(f"{self.barrier}.{round}").touch()

    def results(self, round: int = 0, timeout: float = 300) -> list[Result]:
        files = self._files(round, "done")
        self._wait(files, timeout)
        return [Result(**json.loads(f.read_text())) for f in files]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


class Hogs:
    """Processes that keep `count` cores busy (a loop each), stopped by their pids."""

    def __init__(self, count: int):
        self.count, self.processes = count, []

    def __enter__(self) -> Hogs:
        self.processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the values, by the nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else float("nan")


def latency(results: list[Result]) -> dict:
    """The requests' latency over every publisher: count, p50, p95, max (ms); how many got no
    answer (refused, timed out, dropped) and how many a 5xx."""
    seconds = [t[3] for r in results for t in r.timings]
    return {"requests": len(seconds), "p50_ms": 1000 * statistics.median(seconds) if seconds else float("nan"),
            "p95_ms": 1000 * percentile(seconds, 95), "max_ms": 1000 * max(seconds, default=float("nan")),
            "unanswered": sum(1 for r in results for t in r.timings if t[2] == "error"),
            "5xx": sum(1 for r in results for t in r.timings if isinstance(t[2], int) and t[2] >= 500)}
