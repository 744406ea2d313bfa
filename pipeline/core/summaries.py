"""Reading what the sweep and report stages wrote, with one clear line when it is missing (the
training record has its own typed reader: core/record.py)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import PipelineError
from .catalog import ACROSS_SUMMARY, SWEEP_RECORD, ReportFiles


def _read_summary(path: Path, stage: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro {stage}` first") from None


def read_sweep() -> dict:
    return _read_summary(SWEEP_RECORD, "sweep_alpha")


def read_report_summary(dataset: str) -> dict:
    return _read_summary(ReportFiles(dataset).summary, "report")


def read_across_summary() -> dict:
    return _read_summary(ACROSS_SUMMARY, "report")


def read_run_times(path: Path) -> dict | None:
    """When a stage ran (logs/run-times), or None: a stage DVC restored from its cache never ran here."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
