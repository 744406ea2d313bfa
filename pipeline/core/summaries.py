"""The report stage's summaries, typed: each dataset's (reports/<dataset>/summary.json) and the one
across datasets (reports/across/summary.json), written by reports/ and read by tracking/ through
these models only, so that a renamed or missing key fails where it is read, in one line, and not
mid-publish. Also the sweep's record and the run times, read with one clear line when missing
(the training record has its own model: core/record.py).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from . import atomic
from .catalog import ACROSS_SUMMARY, ACROSS_TUNED_SUMMARY, SWEEP_RECORD, ReportFiles
from .errors import PipelineError

MODEL = ConfigDict(extra="forbid", frozen=True)

# A statistic that could not be computed (no test for the reference, say) is null: the files stay
# standard JSON.
Number = Optional[float]


def _missing_as_none(row: dict) -> dict:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


class Summary(BaseModel):
    """Saved as JSON (the key order as declared), loaded with one line naming the file."""
    model_config = MODEL

    def save(self, path: Path) -> None:
        atomic.write_json(path, self.model_dump())

    @classmethod
    def read(cls, path: Path, stage: str = "report"):
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise PipelineError(f"{path}: not found; run `dvc repro {stage}` first") from None
        except (ValueError, ValidationError) as exc:
            problem = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
            where = ".".join(map(str, problem["loc"]))
            raise PipelineError(f"{path}: {where + ': ' if where else ''}{problem['msg']} (written by another "
                                f"version of the pipeline? run `dvc repro {stage}`)") from None


class VariantRow(Summary):
    """One variant of a dataset's report against the reference (a row of comparison.csv)."""
    variant: str
    loss: str
    last_activation: str
    replicas: int
    splits: int
    val_accuracy_mean: Number
    val_accuracy_sd: Number
    val_accuracy_ci_low: Number
    val_accuracy_ci_high: Number
    canonical_val_accuracy: Number
    diff_vs_reference: Number
    diff_ci_low: Number
    diff_ci_high: Number
    diff_holm_low: Number    # the difference's interval at the level Holm's step-down tested it
    diff_holm_high: Number
    p_improvement: Number
    p_improvement_ci_low: Number
    p_improvement_ci_high: Number
    p_value: Number
    p_holm: Number
    p_equivalence: Number
    p_equivalence_holm: Number
    verdict: str
    # Inconclusive: the fewest splits that would decide it at this many rows; null when none would
    # (or when decided).
    resolving_splits: Optional[int]
    identical_to: str
    diagnoses: str
    # Secondary scores of the probabilities (record.SCORES), each mean with its interval, as
    # accuracy's is computed; no verdicts on them.
    val_log_loss_mean: Number
    val_log_loss_ci_low: Number
    val_log_loss_ci_high: Number
    val_brier_mean: Number
    val_brier_ci_low: Number
    val_brier_ci_high: Number
    val_calibration_error_mean: Number
    val_calibration_error_ci_low: Number
    val_calibration_error_ci_high: Number

    @classmethod
    def of(cls, row: dict) -> VariantRow:
        return cls(**_missing_as_none(row))


COLUMNS = tuple(VariantRow.model_fields)  # comparison.csv's


class ReportSummary(Summary):
    """What a dataset's report concludes, and every variant's row."""
    reference: str
    champion: str
    champion_rule: str
    champion_val_accuracy_mean: float
    margin: float
    hypotheses: int
    identical: dict[str, str]
    confidence: float
    seeds: int
    splits: int
    test: str
    val_rows: int
    train_rows: int
    dataset: str
    classes: int
    variants: dict[str, VariantRow]
    digests: dict[str, str]       # each variant's training record digest, as reported
    contrasts: list[str]
    # The tuned study's summary only: per variant, how many splits chose each learning rate.
    chosen_lr: Optional[dict[str, dict[str, int]]] = None

    @classmethod
    def load(cls, dataset: str, tuned: bool = False) -> ReportSummary:
        files = ReportFiles(dataset)
        return cls.read(files.tuned_summary if tuned else files.summary)


class AcrossDataset(Summary):
    majority_share: float
    classes: int
    val_rows: int
    champion: str


class AcrossVariant(Summary):
    """One variant across datasets (a row of across.csv)."""
    variant: str
    datasets: int
    mean: Number
    mean_low: Number
    mean_high: Number
    iqm: Number
    iqm_low: Number
    iqm_high: Number
    diff: Number
    diff_low: Number
    diff_high: Number
    mean_rank: Number
    verdicts: str


ACROSS_COLUMNS = tuple(AcrossVariant.model_fields)  # across.csv's


class RankTests(Summary):
    """Friedman's test and the Nemenyi critical difference over the datasets (statistics/across.py)."""
    mean_ranks: dict[str, float]
    chi2: float
    f: float
    p: float
    datasets: int
    variants: int
    alpha: float
    cd: float
    separated: list[tuple[str, str]]
    sentence: str


class NoRanks(Summary):
    """Too few datasets or variants for Friedman's test: only why."""
    sentence: str


class AgainstReference(Summary):
    """One distinct, sound variant against the reference over the datasets (statistics/across.py):
    the Bayesian signed-rank test with the margin as its rope (p_*: the posterior probability that
    each region is the likeliest), and Wilcoxon's test where there are datasets enough for it."""
    variant: str
    datasets: int
    mean_diff: float
    p_worse: float
    p_equivalent: float
    p_better: float
    wilcoxon_p: Optional[float]
    wilcoxon_p_holm: Optional[float]


def by_region(rows: list[AgainstReference], sure: float) -> dict[str | None, list[AgainstReference]]:
    """The rows whose posterior puts at least `sure` on each region (p_equivalent, p_better,
    p_worse), and under None those with no region that likely: how the page across datasets and
    MLflow's view of it read the Bayesian test alike."""
    found: dict[str | None, list[AgainstReference]] = {
        key: [r for r in rows if getattr(r, key) >= sure] for key in ("p_equivalent", "p_better", "p_worse")}
    found[None] = [r for r in rows if max(r.p_worse, r.p_equivalent, r.p_better) < sure]
    return found


class AcrossSummary(Summary):
    datasets: dict[str, AcrossDataset]
    reference: str
    confidence: float
    method: str
    variants: list[AcrossVariant]
    normalised: dict[str, dict[str, float]]
    verdicts: dict[str, dict[str, str]]
    # Not ranked or tested across datasets, and why: a copy (identical to another variant on
    # every dataset) or an unsound pairing (diagnosed before training).
    set_apart: dict[str, str]
    ranks: Union[RankTests, NoRanks]
    rope: float
    against_reference: list[AgainstReference]
    wilcoxon: str
    separates: str  # what these datasets can and cannot tell apart, in one paragraph (the README's)
    square_loss: str

    @classmethod
    def load(cls, tuned: bool = False) -> AcrossSummary:
        return cls.read(ACROSS_TUNED_SUMMARY if tuned else ACROSS_SUMMARY)


def read_sweep() -> dict:
    try:
        return json.loads(SWEEP_RECORD.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{SWEEP_RECORD}: not found; run `dvc repro sweep_alpha` first") from None


def read_run_times(path: Path) -> dict | None:
    """When a stage ran (logs/run-times), or None: a stage DVC restored from its cache never ran here."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
