"""Reading what the sweep and report stages wrote, with one clear line when it is missing (the
training record has its own typed reader: study/record.py)."""
from __future__ import annotations

import json

from .errors import PipelineError
from .catalog import RUN_TIMES, SUMMARY, SWEEP_RECORD


def read_sweep() -> dict:
    try:
        return json.loads(SWEEP_RECORD.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{SWEEP_RECORD}: not found; run `dvc repro sweep_alpha` first") from None


def read_report_summary() -> dict:
    try:
        return json.loads(SUMMARY.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{SUMMARY}: not found; run `dvc repro report` first") from None


def read_run_times(name: str) -> dict | None:
    """When a stage ran (logs/run-times), or None: a stage DVC restored from its cache never ran here."""
    try:
        return json.loads((RUN_TIMES / f"{name}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
