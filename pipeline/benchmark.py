"""`python -m pipeline benchmark` (`make benchmark`): the benchmark's `dvc repro` in keel/, its
output as DVC prints it, and a line at each stage's start saying where it is and how long the
rest should take.

The estimate weighs each train@ stage still to run by its table's batches per epoch (a
training's steps; its prepared.json gives the rows once preprocess@ ran) and spreads the train@
stages' elapsed time over the batches they covered; before the first one ends it says nothing
it cannot know. DVC runs the stages one at a time, so the stage running is the only one.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .core import config
from .core.catalog import DatasetFiles
from .core.errors import PipelineError

FOLDER = Path("keel")  # the benchmark's DVC project (docs/keel.md)
RUNNING = re.compile(r"Running stage '([^']+)'")
# A stage DVC does not run: its inputs unchanged, or its outputs restored from the run-cache.
KEPT = re.compile(r"Stage '([^']+)' (?:didn't change, skipping|is cached)")


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

    def line(self, stage: str, now: float) -> str:
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
            sys.stdout.write(text)
            sys.stdout.flush()
    if process.returncode:
        raise PipelineError(f"benchmark: `dvc repro` in {folder}/ stopped (exit {process.returncode}); its "
                            f"output is above; run `make benchmark` again to go on from there")
    print(f"benchmark: done in {_clock(time.monotonic() - progress.started)}; reports in {folder / 'reports'}")
