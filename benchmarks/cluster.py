"""The Ray backend's cost, and what a cluster would buy: python -m benchmarks.cluster [--cpus N]

After `make repro` and `make install-cluster`, in a copy of the project with the checkout's
prepared data and params.yaml's default study: every train@<dataset> stage's command once with
the local backend, then once on a Ray head started here with `--cpus` CPUs (1: the local
backend's one process, so the ratio is Ray's overhead alone), the two copies' outputs compared
byte for byte; then report and publish (into a fresh SQLite store), the driver's own work.

From the measured per-cell times it estimates, on paper, the study's wall time on N identical
nodes of this machine's size, for the stage layout as it is (one train stage per dataset, each
fanning its cells out while the next waits) and for `train-study` sending every dataset's cells
at once (its driver's work taken as the stages'), and the largest study (replicas per variant) that fits in an hour on 8 nodes. Writes
the table between the cluster markers of benchmarks/README.md and prints it.
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.study.backends import reachable

from .run import BIN, ROOT, env

MARKERS = ("<!-- cluster:begin -->", "<!-- cluster:end -->")
NODES = (1, 2, 4, 8, 16)
HOUR = 3600.0


def copy(where: Path, name: str) -> Path:
    repo = where / name
    for code in ("pipeline", "losses"):
        shutil.copytree(ROOT / code, repo / code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data", repo / "data")
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    return repo


def train_all(repo: Path, datasets: list[str], **extra) -> dict[str, float]:
    """Each dataset's train stage command, its wall seconds."""
    walls = {}
    for dataset in datasets:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipeline", "train", dataset], cwd=repo, env=env(**extra),
                              capture_output=True, text=True)
        walls[dataset] = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"benchmark: train {dataset} failed:\n{done.stderr[-2000:]}")
    return walls


def cells(repo: Path) -> dict[tuple[str, str], float]:
    """(dataset, variant) -> the seconds train_cell took (its own record of when it ran)."""
    out = {}
    for path in sorted((repo / "logs" / "run-times").glob("*/*.json")):
        times = json.loads(path.read_text())
        out[(path.parent.name, path.stem)] = (times["ended_ms"] - times["started_ms"]) / 1000
    return out


def outputs(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("results", "metrics", "plots") for p in sorted((repo / folder).rglob("*"))
            if p.is_file() and "iris" not in p.parts}


def makespan(seconds: list[float], slots: int) -> float:
    """Longest task first onto the least loaded slot (Graham's LPT, within 4/3 of the optimum)."""
    loads = [0.0] * slots
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + s)
    return max(loads)


def timed(repo: Path, *command: str, **extra) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", *command], cwd=repo, env=env(**extra),
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmark: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=1, help="the Ray head's CPUs (default 1: the local backend's)")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    datasets = list(params["datasets"])
    with tempfile.TemporaryDirectory(prefix="bench-cluster-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        local = copy(tmp, "local")
        os.environ.pop("RAY_ADDRESS", None)  # the local backend's run must not find a cluster
        local_walls = train_all(local, datasets)
        ray_repo = copy(tmp, "ray")
        port = "6399"
        head = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
                                 "--node-ip-address=127.0.0.1", f"--num-cpus={args.cpus}", "--include-dashboard=false",
                                 "--disable-usage-stats", f"--temp-dir={tmp / 'ray'}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env=env(RAY_USAGE_STATS_ENABLED="0"))
        try:
            deadline = time.monotonic() + 60
            while reachable(f"127.0.0.1:{port}") and time.monotonic() < deadline:
                time.sleep(0.5)
            if head.poll() is not None:
                raise SystemExit(f"benchmark: ray start --head on port {port} exited ({head.returncode})")
            ray_walls = train_all(ray_repo, datasets, RAY_ADDRESS=f"127.0.0.1:{port}")
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(head.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(5)
            head.wait()
        same = outputs(local) == outputs(ray_repo)
        local_cells, ray_cells = cells(local), cells(ray_repo)
        # The driver's own work after training: every report, then publishing all of it.
        for folder in ("results", "metrics", "plots"):  # the sweep's, which both read
            shutil.copytree(ROOT / folder / "iris", local / folder / "iris")
        report = timed(local, "report")
        publish = timed(local, "publish", MLFLOW_TRACKING_URI=f"sqlite:///{local / 'mlflow.db'}")
    rows = table(datasets, local_walls, ray_walls, local_cells, ray_cells, report, publish, same, args.cpus)
    text = "\n".join(rows)
    print(text)
    readme = ROOT / "benchmarks" / "README.md"
    body = readme.read_text()
    pattern = re.compile(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), re.S)
    readme.write_text(pattern.sub(lambda _: f"{MARKERS[0]}\n{text}\n{MARKERS[1]}", body))


def table(datasets, local_walls, ray_walls, local_cells, ray_cells, report, publish, same, cpus) -> list[str]:
    import statistics

    total_local, total_ray = sum(local_walls.values()), sum(ray_walls.values())
    per_cell = [ray_cells[k] / local_cells[k] for k in local_cells]
    stage_overhead = {d: local_walls[d] - sum(s for (ds, _), s in local_cells.items() if ds == d) for d in datasets}
    rows = [f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores), params.yaml's study, "
            f"{len(local_cells)} cells; one run of each backend, every cell's seconds its own record's.", "",
            "| | local backend | Ray backend (a head here, {} CPU) | ratio |".format(cpus), "|---|---|---|---|",
            f"| the 5 train stages' commands, wall | {total_local:.0f} s | {total_ray:.0f} s | {total_ray / total_local:.2f}x |"]
    for d in datasets:
        rows.append(f"| ... train {d} | {local_walls[d]:.1f} s | {ray_walls[d]:.1f} s | "
                    f"{ray_walls[d] / local_walls[d]:.2f}x |")
    rows += [f"| a cell's training (train_cell), median over the cells | "
             f"{statistics.median(local_cells.values()):.2f} s | {statistics.median(ray_cells.values()):.2f} s | "
             f"{statistics.median(per_cell):.2f}x |",
             f"| outputs (results, metrics, plots) byte for byte | | | {'identical' if same else 'DIFFERENT'} |", "",
             f"The driver's own work: each stage's imports, hashing and writing, {sum(stage_overhead.values()):.0f} s "
             f"in all; report {report:.0f} s; publish {publish:.0f} s (into a fresh SQLite store).", ""]
    # On paper: N nodes like this one, each with os.cpu_count() CPUs, a task per CPU.
    slots_per_node = os.cpu_count() or 1
    fixed = report + publish

    def by_stage(scale: float, nodes: int) -> float:
        return sum(makespan([s * scale for (ds, _), s in local_cells.items() if ds == d], nodes * slots_per_node)
                   + stage_overhead[d] for d in datasets) + fixed

    def at_once(scale: float, nodes: int) -> float:
        return makespan([s * scale for s in local_cells.values()], nodes * slots_per_node) \
            + sum(stage_overhead.values()) + fixed

    rows += [f"| nodes ({slots_per_node} CPUs each) | `dvc repro`: a train stage per dataset, one after another | `train-study`: every cell at once | the bound: the driver's work + the longest cell |",
             "|---|---|---|---|"]
    longest = max(local_cells.values())
    for n in NODES:
        rows.append(f"| {n} | {by_stage(1, n):.0f} s | {at_once(1, n):.0f} s | "
                    f"{sum(stage_overhead.values()) + fixed + longest:.0f} s |")
    replicas = 100  # params.yaml's 5 x 20, what the cells' seconds were measured at

    def largest(estimate) -> int:
        scale = 1.0
        while estimate(scale * 2, 8) <= HOUR:
            scale *= 2
        low, high = scale, scale * 2
        for _ in range(30):
            mid = (low + high) / 2
            low, high = (mid, high) if estimate(mid, 8) <= HOUR else (low, mid)
        return int(low * replicas)

    rows += ["", f"The largest study that fits in an hour on 8 nodes, as replicas per variant (now {replicas}), "
             f"a cell's time taken as proportional to its replicas and the driver's work as fixed: "
             f"{largest(by_stage):,} through `dvc repro`, {largest(at_once):,} through `train-study`."]
    return rows


if __name__ == "__main__":
    main()
