"""The page across datasets in MLflow: one run in its own experiment, holding the page's files,
each variant's figures across datasets as metrics, its verdict counts as tags, and tags naming
each dataset's report run and champion run."""
from __future__ import annotations

from ..core.catalog import ACROSS, ACROSS_MD, ACROSS_TUNED_SUMMARY
from ..core.summaries import AcrossSummary
from .report_runs import folder_digest
from .store import DIGEST_TAG, closing_run
from .variant_runs import readable

RUN_NAME = "across-datasets"
# Which run is the page across datasets (study_view.role): its report stage is the datasets'.
PAGE_TAG = "page"
# Per variant, from the page's table, to search and sort by: metric across.<key>/<variant>; the
# key before the "/" is a section of the chart view. The intervals are in the table (artifact):
# as metrics they would be a section of one-bar charts each. The run's page lists them as
# logged: the difference to the reference first.
VARIANT_METRICS = ("diff", "mean_rank", "iqm")
# Per distinct sound variant against the reference: the Bayesian signed-rank test's posterior.
AGAINST_METRICS = ("p_worse", "p_equivalent", "p_better")


def digest() -> str:
    return folder_digest(ACROSS)


def references(report_ids: dict[str, str], champion_ids: dict[str, str]) -> dict[str, str]:
    """Tags naming other runs: each dataset's report run and champion's run."""
    return {**{f"report.{dataset}": run_id for dataset, run_id in report_ids.items()},
            **{f"champion.{dataset}.run_id": run_id for dataset, run_id in champion_ids.items()}}


def log_across(client, experiment_id: str, summary: AcrossSummary, report_ids: dict[str, str],
               champion_ids: dict[str, str], extra_tags: dict) -> str:
    from mlflow.entities import Metric, Param

    ranks = summary.ranks
    # The tuned study's page, when the report wrote one: the same figures under `tuned.` (study/tuning.py).
    tuned = AcrossSummary.load(tuned=True) if ACROSS_TUNED_SUMMARY.exists() else None
    tags = {DIGEST_TAG: digest(), "pipeline.stage": "report", PAGE_TAG: RUN_NAME, "mlflow.source.name": "dvc repro",
            **references(report_ids, champion_ids),
            **{f"verdicts.{row.variant}": row.verdicts for row in summary.variants},
            **{f"champion.{dataset}": row.champion for dataset, row in summary.datasets.items()},
            "square_loss": summary.square_loss, "ranks": ranks.sentence, "separates": summary.separates,
            "mlflow.note.content": ACROSS_MD.read_text(), **extra_tags}
    if tuned:
        tags.update({"tuned.separates": tuned.separates,
                     **{f"tuned.verdicts.{row.variant}": row.verdicts for row in tuned.variants}})
    run = client.create_run(experiment_id, run_name=RUN_NAME, tags=tags)
    run_id = run.info.run_id
    with closing_run(client, run_id) as closing:
        params = {"datasets": ",".join(summary.datasets), "variants": len(summary.variants),
                  "reference": summary.reference, "confidence": summary.confidence, "method": summary.method,
                  **{f"data.{dataset}.classes": row.classes for dataset, row in summary.datasets.items()},
                  **{f"data.{dataset}.majority_share": row.majority_share
                     for dataset, row in summary.datasets.items()}}
        stamp = run.info.start_time
        metrics = []
        for prefix, page in [("", summary), *([("tuned.", tuned)] if tuned else [])]:
            metrics += [Metric(f"{prefix}across.{key}/{row.variant}", readable(getattr(row, key)), stamp, 0)
                        for row in page.variants for key in VARIANT_METRICS if getattr(row, key) is not None]
            metrics += [Metric(f"{prefix}against.{key}/{row.variant}", readable(getattr(row, key)), stamp, 0)
                        for row in page.against_reference for key in AGAINST_METRICS]
        # Without ranks (one dataset, or under three variants) the page says why, and so does the run.
        metrics += [Metric(f"friedman.{key}", readable(getattr(ranks, key)), stamp, 0) for key in ("chi2", "f", "p", "cd")
                    if getattr(ranks, key, None) is not None]
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()], metrics=metrics)
        client.log_artifacts(run_id, str(ACROSS))
        closing.finish()
    return run_id
