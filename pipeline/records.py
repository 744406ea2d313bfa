"""Reading what the training and sweep stages wrote, with one clear line when it is missing."""
from __future__ import annotations

import json

from .errors import PipelineError
from .paths import REPORT, RESULTS, SWEEP_RECORD


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
