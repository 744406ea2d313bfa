"""Runs published per minute by the team server (team/server.sh: PostgreSQL + `mlflow server`)
at 1, 4 and 8 publishers at once, idle and with both cores busy, and where the time goes.

    .venv/bin/python -m benchmarks.publish_load            # needs PostgreSQL; writes benchmarks/README.md
    .venv/bin/python -m benchmarks.publish_load --quick    # 1 and 4 publishers, idle only, printed

Each publisher publishes a small study of its own (3 variants of 2 x 2 replicas with their
models, the report, the Iris sweep of 4 alphas that every study shares), all of them starting
at the same moment (benchmarks/publishers.py), into a database of their own (a fresh one per
row). Runs per minute: the runs on the server afterwards (sweep children included) over the
time from the start to the last publisher done. Where the time goes: the CPU seconds of the
`mlflow server` processes, of PostgreSQL (its backends, exited ones included) and of the
publishers over that time; the request latencies are each HTTP request as a publisher saw it
(MLflow's own retries included).
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .publishers import Hogs, Publishers, copies, latency
from .run import ROOT, env, machine, project_copy

TICK = os.sysconf("SC_CLK_TCK")
README = ROOT / "benchmarks" / "README.md"
BEGIN, END = "<!-- publishing:begin -->", "<!-- publishing:end -->"


def study(where: Path) -> Path:
    """A small finished study, everything but publish (as tests/conftest.py's `repo`)."""
    repo = project_copy(where, variants=("nll_relu", "nll_logsoftmax", "mse"), seeds=2, splits=2, name="study")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 2
    params["iris"].update(alpha_count=4, max_iter=200)
    params["study"]["reference"] = "nll_logsoftmax"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = subprocess.run(["dvc", "repro", "report", "sweep_alpha"], cwd=repo, env=env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark: dvc repro failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return repo


def cpu_seconds(pids) -> float:
    """utime + stime of these processes, and of their children that exited (cutime + cstime)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])
    return total / TICK


def processes(match) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            comm, rest = fields[0].split("(", 1)[1], fields[1].split()
        except (OSError, IndexError):
            continue
        if match(int(stat.parent.name), comm, rest):
            found.append(int(stat.parent.name))
    return found


class Server:
    """team/server.sh on a database of its own for each row."""

    def __init__(self, work: Path, port: int):
        self.work, self.port = work, port
        self.password = secrets.token_urlsafe(16)
        self.uri = f"http://127.0.0.1:{port}"
        self.db = None

    def script(self, command: str, db: str) -> None:
        environment = {**os.environ, "MLFLOW_DB_PASSWORD": self.password, "MLFLOW_TEAM_DIR": str(self.work / "team"),
                       "MLFLOW_TEAM_PORT": str(self.port), "MLFLOW_DB_NAME": db,
                       "MLFLOW_BIN": str(Path(sys.executable).parent / "mlflow")}
        done = subprocess.run(["bash", str(ROOT / "team/server.sh"), command], env=environment,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"benchmark: team/server.sh {command} failed: {done.stdout}{done.stderr}")

    def fresh(self) -> None:
        if self.db:
            self.script("stop", self.db)
            drop(self.db)
        self.db = f"mlflow_bench_{secrets.token_hex(4)}"
        self.script("start", self.db)
        # Its job processes (huey consumers) import for a while after /health answers: wait
        # until the server idles (under 0.1 CPU s a second), so that their start is not counted.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            before = cpu_seconds(self.pids())
            time.sleep(2)
            if cpu_seconds(self.pids()) - before < 0.2:
                break

    def pids(self) -> list[int]:
        leader = int((self.work / "team" / "mlflow-server.pid").read_text())
        return processes(lambda pid, comm, rest: int(rest[2]) == leader)  # its process group

    def close(self) -> None:
        if self.db:
            self.script("stop", self.db)
            drop(self.db)


def drop(db: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", "dropdb", "--if-exists", db], capture_output=True)


def postgres_pids() -> list[int]:
    return processes(lambda pid, comm, rest: comm == "postgres")


def runs_on(uri: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    count = 0
    for name in ("titanic-loss-functions", "iris-alpha-sweep"):
        experiment = client.get_experiment_by_name(name)
        count += len(client.search_runs([experiment.experiment_id])) if experiment else 0
    return count


def measure(server: Server, folders: list[Path], work: Path, busy: bool) -> dict:
    server.fresh()
    work.mkdir(parents=True)
    publishers = Publishers(folders, server.uri, work)
    try:
        with Hogs(2 if busy else 0):
            publishers.start(timeout=600)
            mlflow_pids, pg_pids = server.pids(), postgres_pids()
            before = cpu_seconds(mlflow_pids), cpu_seconds(pg_pids)
            results = publishers.results(timeout=900)
            after = cpu_seconds(mlflow_pids), cpu_seconds(pg_pids + [p for p in postgres_pids() if p not in pg_pids])
    finally:
        publishers.stop()
    failed = [r.stderr[-500:] for r in results if r.rc]
    if failed:
        raise SystemExit(f"benchmark: a publisher failed: {failed[0]}")
    wall = max(r.ended for r in results) - min(r.started for r in results)
    runs = runs_on(server.uri)
    return {"publishers": len(folders), "busy": busy, "wall": wall, "runs": runs, "per_minute": 60 * runs / wall,
            **latency(results), "server_cpu": after[0] - before[0], "db_cpu": after[1] - before[1],
            "client_cpu": sum(r.cpu for r in results),
            "waits": sum(len(re.findall("retrying in", r.stderr)) for r in results)}


def table(rows: list[dict]) -> str:
    lines = ["| publishers | cores | wall s | runs | runs/min | request p50 / p95 ms | server CPU s | "
             "PostgreSQL CPU s | publishers' CPU s | 5xx | waits |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['publishers']} | {'both busy (2 hogs)' if r['busy'] else 'idle'} | {r['wall']:.1f} | "
                     f"{r['runs']} | {r['per_minute']:.0f} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} | "
                     f"{r['server_cpu']:.1f} | {r['db_cpu']:.1f} | {r['client_cpu']:.1f} | {r['5xx']} | {r['waits']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish_load")
    parser.add_argument("--quick", action="store_true", help="1 and 4 publishers, idle only; print, do not write")
    args = parser.parse_args(argv)
    counts, loads = ((1, 4), (False,)) if args.quick else ((1, 4, 8), (False, True))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = machine()
        finished = study(tmp)
        folders = copies(finished, tmp / "copies", max(counts), distinct=max(counts))
        server = Server(tmp, free_port())
        rows = []
        try:
            for busy in loads:
                for count in counts:
                    row = measure(server, folders[:count], tmp / f"work-{count}-{int(busy)}", busy)
                    rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
        finally:
            server.close()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"Measured {when} on {started}; `mlflow server` as team/server.sh starts it "
            f"(PostgreSQL {postgres_version()}), a fresh database per row.\n\n{table(rows)}")
    print(text)
    if not args.quick:
        head, rest = README.read_text().split(BEGIN, 1)
        README.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_version() -> str:
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split()
    return out[0] if out else "?"


if __name__ == "__main__":
    main()
