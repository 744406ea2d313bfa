"""Reading what the sweep and report stages wrote, with one clear line when it is missing (the
training record has its own typed reader: study/record.py)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import PipelineError
from .catalog import STUDY_DATASET, STUDY_REPORT, SWEEP_RECORD


def read_sweep() -> dict:
    try:
        return json.loads(SWEEP_RECORD.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{SWEEP_RECORD}: not found; run `dvc repro sweep_alpha` first") from None


def read_report_summary() -> dict:
    try:
        return json.loads(STUDY_REPORT.summary.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{STUDY_REPORT.summary}: not found; run `dvc repro report@{STUDY_DATASET}` first") from None


def read_run_times(path: Path) -> dict | None:
    """When a stage ran (logs/run-times), or None: a stage DVC restored from its cache never ran here."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
