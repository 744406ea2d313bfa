"""What the alpha sweep's MLflow runs hold: a parent per sweep, a child per alpha.

Children carry alpha, model and neurons as params and their scores as metrics, so the UI's
chart view can plot test accuracy against alpha (or log10_alpha) across the children.
"""
from __future__ import annotations

import time

from ..core.catalog import SWEEP_GIF, SWEEP_RECORD, SWEEP_SUMMARY, SWEEP_TABLE
from ..core.progress import progress
from .store import DIGEST_TAG, closing_run

EXPERIMENT = "iris-alpha-sweep"
PARENT_DIGEST_TAG = "pipeline.parent_digest"
SCORES = ("train_accuracy", "test_accuracy", "weight_l2_norm", "n_iter", "log10_alpha")


def log_sweep(client, experiment_id: str, record: dict, times: dict | None, extra_tags: dict) -> str:
    """The sweep's parent run and its children; `times` (logs/run-times/sweep.json) say when it ran,
    or None (restored from DVC's run-cache): then the runs carry the time of logging."""
    from mlflow.entities import Metric, Param

    s = record["settings"]
    name = f"alpha-sweep-{s['model']}"
    data = record["data"]
    now = int(time.time() * 1000)
    started, when = (times["started_ms"], times["ended_ms"]) if times else (now, now)
    parent = client.create_run(experiment_id, start_time=started, run_name=name, tags={
        DIGEST_TAG: record["digest"], "model": s["model"], "pipeline.stage": "sweep_alpha",
        "mlflow.source.name": "dvc repro",
        "mlflow.note.content": f"{s['model']} on Iris (setosa against versicolor, sepal and petal length) "
                               f"for {s['alpha_count']} alphas from {s['alpha_min']:g} to {s['alpha_max']:g}.",
        **extra_tags})
    parent_id = parent.info.run_id
    with closing_run(client, parent_id) as closing:
        params = {**{k: v for k, v in s.items() if k != "workers"}, "seed": record["seed"],
                  "data.source": data["source"], "data.sha256": data["sha256"],
                  "data.train_rows": data["train_rows"], "data.test_rows": data["test_rows"],
                  "data.features": ",".join(data["features"])}
        # On the parent, step = the alpha's index: one line per score across the sweep.
        curves = [Metric(key, float(row[key]), when, i) for i, row in enumerate(record["rows"])
                  for key in SCORES if row[key] is not None]
        client.log_batch(parent_id, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=curves + [Metric(k, float(v), when, 0) for k, v in record["summary"].items()])
        for source in (SWEEP_GIF, SWEEP_SUMMARY, SWEEP_TABLE, SWEEP_RECORD):
            client.log_artifact(parent_id, str(source))
        for row in progress(record["rows"], "publish: alpha runs"):
            child = client.create_run(experiment_id, start_time=started,
                                      run_name=f"alpha={row['alpha']:.4g}",
                                      tags={"mlflow.parentRunId": parent_id, PARENT_DIGEST_TAG: record["digest"],
                                            "model": s["model"], "converged": str(row["converged"])})
            client.log_batch(child.info.run_id,
                             params=[Param("alpha", repr(row["alpha"])), Param("model", s["model"]),
                                     Param("neurons", str(s["neurons"])), Param("max_iter", str(s["max_iter"])),
                                     Param("seed", str(record["seed"]))],
                             metrics=[Metric(key, float(row[key]), when, 0) for key in SCORES if row[key] is not None])
            client.set_terminated(child.info.run_id, "FINISHED", end_time=when)
        closing.finish(end_time=when)
    return parent_id
