"""Reading what the training and sweep stages wrote, with one clear line when it is missing."""
from __future__ import annotations

import json

from .errors import PipelineError
from .paths import REPORT, RESULTS, RUN_TIMES, SWEEP_RECORD


def read_record(name: str) -> dict:
    path = RESULTS / name / "record.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro train@{name}` first") from None


def read_sweep() -> dict:
    try:
        return json.loads(SWEEP_RECORD.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{SWEEP_RECORD}: not found; run `dvc repro sweep_alpha` first") from None


def read_report_summary() -> dict:
    path = REPORT / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro report` first") from None


def read_replicas(name: str) -> dict:
    """A variant's replicas.csv as arrays shaped (replicas, epochs), plus each replica's seed and split."""
    import numpy as np

    path = RESULTS / name / "replicas.csv"
    try:
        table = np.genfromtxt(path, delimiter=",", names=True)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro train@{name}` first") from None
    table = np.atleast_1d(table)
    count = int(table["replica"].max()) + 1
    out = {key: table[key].reshape(count, -1) for key in ("train_loss", "val_loss", "val_accuracy")}
    out["seed"] = table["seed"].reshape(count, -1)[:, 0].astype(int)
    out["split"] = table["split"].reshape(count, -1)[:, 0].astype(int)
    return out


def read_run_times(name: str) -> dict | None:
    """When a stage ran (logs/run-times), or None: a stage DVC restored from its cache never ran here."""
    try:
        return json.loads((RUN_TIMES / f"{name}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
