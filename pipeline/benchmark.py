"""`python -m pipeline benchmark` (`make benchmark`): the benchmark's `dvc repro` in keel/, its
output as DVC prints it, and a line at each stage's start saying where it is and how long the
rest should take.

The estimate weighs each train@ stage still to run by its table's batches per epoch (a
training's steps; its prepared.json gives the rows once preprocess@ ran) and spreads the train@
stages' elapsed time over the batches they covered; before the first one ends it says nothing
it cannot know. DVC runs the stages one at a time, so the stage running is the only one. Each
variant a train@ stage finishes (its line `train <table> <variant>: ...`) is counted, `[k/n]`.

At the end it says what the training would take fanned out on a cluster (docs/keel.md): the
cells' (a table x a variant) own times, as train@ measured them (logs/run-times/, wall-clock, one
thread each), scheduled longest first onto the cluster's processes; the stages around the training
run on one machine and are added as this run measured them.
"""
from __future__ import annotations

import heapq
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .core import config
from .core.catalog import DatasetFiles, VariantFiles
from .core.summaries import read_run_times
from .core.errors import PipelineError

FOLDER = Path("keel")  # the benchmark's DVC project (docs/keel.md)
RUNNING = re.compile(r"Running stage '([^']+)'")
# A stage DVC does not run: its inputs unchanged, or its outputs restored from the run-cache.
KEPT = re.compile(r"Stage '([^']+)' (?:didn't change, skipping|is cached)")
CELL = re.compile(r"train (\S+) (\S+): \d+ replica")  # a variant train@ finished (study/train.py's line)
NODES = (1, 8, 32)        # cluster sizes the estimate at the end names
CORES_PER_NODE = 2        # each as this machine: a process per core


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{seconds:02d}s"


class Progress:
    """Where a `dvc repro` of the benchmark is, from DVC's "Running stage" lines."""

    def __init__(self, folder: Path, params: config.Params, started: float):
        self.folder, self.params, self.started = folder, params, started
        self.tables = list(params.datasets)
        self.current: tuple[str, float] | None = None   # the train@ stage running, since when
        self.trained: dict[str, float] = {}             # table -> its train@ stage's seconds
        self.kept: set[str] = set()                     # tables whose train@ DVC did not run
        self.cells = 0                                  # variants the running train@ stage finished
        self.stages: dict[str, float] = {}              # every stage that ran -> its seconds
        self.last: tuple[str, float] | None = None      # the stage running, since when

    def keep(self, stage: str) -> None:
        """A stage DVC skipped: a train@ one leaves the time left, and says nothing of the rate."""
        kind, _, table = stage.partition("@")
        if kind == "train":
            self.kept.add(table)

    def batches(self, table: str) -> int | None:
        """Its training batches per epoch, from what preprocess@ wrote (None before it ran)."""
        meta = self.folder / DatasetFiles(table).meta
        try:
            rows = json.loads(meta.read_text())["train_rows"]
        except (OSError, ValueError, KeyError):
            return None
        return math.ceil(rows / self.params.train.batch_size)

    def cell(self, text: str) -> str:
        """A line train@ printed, `[k/n] ` before it if it finished a variant of the running table."""
        finished = CELL.match(text)
        if self.current is None or not finished or finished.group(1) != self.current[0]:
            return text
        self.cells += 1
        return f"[{self.cells}/{len(self.params.variants)}] {text}"

    def end(self, now: float) -> None:
        """The running stage, if any, ended at `now`."""
        if self.last is not None:
            self.stages[self.last[0]] = now - self.last[1]
            self.last = None

    def line(self, stage: str, now: float) -> str:
        self.end(now)
        self.last, self.cells = (stage, now), 0
        if self.current is not None:
            table, since = self.current
            self.trained[table] = now - since
            self.current = None
        kind, _, table = stage.partition("@")
        elapsed = f"{_clock(now - self.started)} in"
        if kind != "train" or table not in self.tables:
            return f"benchmark: {stage}; {elapsed}"
        self.current = (table, now)
        left = [t for t in self.tables if t not in self.trained and t not in self.kept]
        head = f"benchmark: train@{table}, table {self.tables.index(table) + 1} of {len(self.tables)}; {elapsed}"
        done = sum(self.batches(t) or 0 for t in self.trained)
        todo = [self.batches(t) for t in left]
        if not self.trained or not done or None in todo:
            return head + "; the time left is estimated once a table has trained"
        rate = sum(self.trained.values()) / done
        tables = f"{len(left)} table{'s' if len(left) > 1 else ''}, this one included"
        return head + f"; about {_clock(rate * sum(todo))} of training left ({tables})"


def makespan(seconds: list[float], workers: int) -> float:
    """How long `workers` processes take for these tasks, each given to the first one free, the
    longest first (Graham's LPT rule: within 4/3 of the best schedule)."""
    loads = [0.0] * workers
    for task in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + task)
    return max(loads)


def cell_seconds(folder: Path, params: config.Params) -> dict[tuple[str, str], float]:
    """Each cell's training time as train@ recorded it (its tuned study included), where it has one."""
    found = {}
    for table in params.datasets:
        for variant in params.variants:
            times = read_run_times(folder / VariantFiles(variant, table).run_times)
            if times is not None:
                found[table, variant] = (times["ended_ms"] - times["started_ms"]) / 1000
    return found


def scaling(progress: Progress, cells: dict[tuple[str, str], float]) -> str:
    """What the training would take fanned out over NODES (the cells scheduled longest first), the
    other stages as long as they took here; or why it cannot say."""
    expected = len(progress.params.datasets) * len(progress.params.variants)
    if len(cells) < expected:
        return (f"benchmark: no estimate for a cluster: {expected - len(cells)} of {expected} cells have no time "
                f"recorded")
    total = sum(cells.values())
    (table, variant), longest = max(cells.items(), key=lambda item: item[1])
    around = sum(t for stage, t in progress.stages.items() if not stage.startswith("train@"))
    trained = [stage for stage in progress.stages if stage.startswith("train@")]
    others = (f"plus the other stages' {_clock(around)} as they took here" if len(trained) == len(progress.tables)
              else "plus the other stages (this run did not time them all)")
    seconds = list(cells.values())
    times = ", ".join(f"{nodes} node{'s' * (nodes > 1)} {_clock(makespan(seconds, nodes * CORES_PER_NODE))}"
                      for nodes in NODES)
    return (f"benchmark: its {len(cells)} cells trained for {_clock(total)} in all (the longest, {table} {variant}, "
            f"{_clock(longest)}); fanned out on nodes of {CORES_PER_NODE} cores (`backend: ray`, longest first) "
            f"the training would take {times}, {others}")


def main(params_path: str = config.PARAMS_FILE, folder: Path = FOLDER) -> None:
    """`dvc repro` in the benchmark's folder, each line passed on as it comes, a progress line
    before each stage's."""
    if not (folder / "dvc.yaml").is_file():
        raise PipelineError(f"{folder / 'dvc.yaml'}: not found (run from the project's root)")
    progress = Progress(folder, config.load(folder / params_path), time.monotonic())
    # Unbuffered: each line arrives when DVC writes it, so a stage's start is when it starts.
    with subprocess.Popen(["dvc", "repro"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        for text in process.stdout:
            running, kept = RUNNING.match(text), KEPT.match(text)
            if running:
                print(progress.line(running.group(1), time.monotonic()), flush=True)
            elif kept:
                progress.keep(kept.group(1))
            else:
                text = progress.cell(text)
            sys.stdout.write(text)
            sys.stdout.flush()
    if process.returncode:
        raise PipelineError(f"benchmark: `dvc repro` in {folder}/ stopped (exit {process.returncode}); its "
                            f"output is above; run `make benchmark` again to go on from there")
    progress.end(time.monotonic())
    print(f"benchmark: done in {_clock(time.monotonic() - progress.started)}; reports in {folder / 'reports'}")
    print(scaling(progress, cell_seconds(folder, progress.params)))
