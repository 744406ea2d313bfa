"""The tuned study in MLflow (study/tuning.py): one run per variant and dataset, in the dataset's
experiment beside the fixed study's runs, told apart by the tag `study` (`tuned` here, `fixed` on
the variant runs). A tuned run holds what the report concluded of the variant at its chosen rates
(its summary metrics under the fixed runs' names, its verdict against the tuned reference), the rate
each split chose, and the tuned record; no model (the served champion is the fixed study's).

Its variant is the tag `tuned_variant`, not `variant`: the study view's current runs are the fixed
study's (study_view.role), and `tags.study = 'tuned'` lists these."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from ..core.catalog import VariantFiles
from ..core.record import TrainingRecord
from ..core.summaries import ReportSummary, VariantRow
from .store import DIGEST_TAG, closing_run
from .variant_runs import STUDY_TAG, summary_metrics

TUNED = "tuned"
RUN_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def run_name(variant: str) -> str:
    return f"{variant} (tuned lr)"


def key(variant: str) -> str:
    """Its name in a publish's outcome (DatasetStudy.key adds the dataset): a tag key of the launch
    run names it, so it holds only what MLflow allows there (no parentheses)."""
    return f"tuned/{variant}"


def chosen(record: TrainingRecord) -> str:
    """The rates the splits chose, with how many chose each: `0.001 x6, 0.003 x4`."""
    return ", ".join(f"{lr:g} x{n}" for lr, n in sorted(Counter(record.tuned.chosen).items()))


def digest(record: TrainingRecord, stats: VariantRow, conclusion: ReportSummary) -> str:
    blob = json.dumps({"record": record.digest, "stats": stats.model_dump(), "reference": conclusion.reference,
                       "champion": conclusion.champion, "layout": RUN_CODE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def log_tuned(client, experiment_id: str, record: TrainingRecord, stats: VariantRow, conclusion: ReportSummary,
              colour: str, extra_tags: dict, name_as: str | None = None) -> str:
    """The run (named `name_as`, else run_name's: a DVC experiment's runs say whose they are), in
    its variant's `colour`."""
    from mlflow.entities import Param

    name, tuning = record.variant, record.tuned
    note = (f"**{name}, each split at the learning rate its own training rows chose** (the tuned study: "
            f"{chosen(record)} of {len(tuning.chosen)} splits, from {', '.join(f'{lr:g}' for lr in tuning.grid)}). "
            f"Final validation accuracy {stats.val_accuracy_mean:.3f} [{stats.val_accuracy_ci_low:.3f}, "
            f"{stats.val_accuracy_ci_high:.3f}]; against the tuned {conclusion.reference}: **{stats.verdict}**. "
            f"The fixed study's run of {name} is the run named {name}.")
    tags = {STUDY_TAG: TUNED, "tuned_variant": name, "dataset": record.dataset, "verdict": stats.verdict,
            "diagnoses": stats.diagnoses, "lr_chosen": chosen(record), "champion": "yes" if name == conclusion.champion
            else "no", DIGEST_TAG: digest(record, stats, conclusion), "mlflow.note.content": note,
            "mlflow.source.name": "dvc repro", "pipeline.stage": VariantFiles(name, record.dataset).stage,
            "mlflow.runColor": colour, **extra_tags}
    params = {"variant": name, "loss": record.config.loss, "last_activation": record.config.last_activation,
              "lr_grid": ",".join(f"{lr:g}" for lr in tuning.grid), "inner_share": tuning.inner_share,
              "inner_rows": tuning.inner_rows, "lr_per_split": ",".join(f"{lr:g}" for lr in tuning.chosen),
              "study.seeds": record.study.seeds, "study.splits": record.study.splits,
              "study.reference": conclusion.reference}
    run = client.create_run(experiment_id, run_name=name_as or run_name(name), tags=tags)
    run_id, stamp = run.info.run_id, run.info.start_time
    with closing_run(client, run_id) as closing:
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=summary_metrics(stats, stamp, 0))
        client.log_artifact(run_id, str(VariantFiles(name, record.dataset).tuned_record))
        closing.finish()
    return run_id
