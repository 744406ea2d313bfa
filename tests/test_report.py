"""The comparison report, its summary run and the champion in the Model Registry."""
import csv
import json

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from pipeline import config
from pipeline.paths import REPORT
from pipeline.titanic import plots as plot_titanic
from pipeline.titanic import report, train
from pipeline.tracking import publish
from pipeline.tracking import report_runs as report_run

VARIANTS = ("nll_relu", "nll_logsoftmax", "mse")


def test_report_table_figures_and_champion(prepared):
    prepared.params(report={"compare": ["mse", "nll_logsoftmax"]})
    for name in VARIANTS:
        train.main(name)
    report.main()
    rows = list(csv.DictReader(open(REPORT / "comparison.csv")))
    assert [r["variant"] for r in rows] == list(VARIANTS)
    assert list(rows[0]) == list(report.COLUMNS)
    summary = json.loads((REPORT / "summary.json").read_text())
    best = max(rows, key=lambda r: float(r["val_accuracy_mean"]))
    assert summary["champion"] == best["variant"] and summary["reference"] == "nll_logsoftmax"
    assert summary["seeds"] == 2 and summary["splits"] == 2 and summary["test"] == "corrected resampled t"
    by_name = {r["variant"]: r for r in rows}
    assert by_name["nll_logsoftmax"]["verdict"] == "reference"
    assert all(r["verdict"] in ("better", "worse", "indistinguishable", "reference") for r in rows)
    assert by_name["nll_relu"]["replicas"] == "4"
    # The row's mean is the mean of the replicas' final accuracies; its interval holds it.
    record = json.loads((prepared.path / "results/titanic/mse/record.json").read_text())
    mean = np.mean([r["final_val_accuracy"] for r in record["replicas"]])
    assert float(by_name["mse"]["val_accuracy_mean"]) == pytest.approx(mean)
    assert float(by_name["mse"]["val_accuracy_ci_low"]) <= mean <= float(by_name["mse"]["val_accuracy_ci_high"])
    text = (REPORT / "comparison.md").read_text()
    assert f"**{best['variant']}**" in text and "corrected resampled t" in text and "Holm" in text
    assert sorted(p.name for p in REPORT.glob("*.png")) == ["compare.png", "contrast_nll.png", "intervals.png"]
    assert "NaN" not in (REPORT / "summary.json").read_text()  # standard JSON: null where there is no test

    plot_titanic.main()
    publish.main(only=["report"])
    client = MlflowClient(prepared.uri())
    experiment = client.get_experiment_by_name("titanic-loss-functions")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted([*VARIANTS, "comparison-report"])
    summary_run = runs["comparison-report"]
    for name in VARIANTS:
        assert summary_run.data.tags[f"summarizes.{name}"] == runs[name].info.run_id
        assert summary_run.data.tags[f"verdict.{name}"] == by_name[name]["verdict"]
    assert {"comparison.md", "comparison.csv", "contrast_nll.png", "intervals.png"} <= {
        a.path for a in client.list_artifacts(summary_run.info.run_id)}
    version = client.get_model_version_by_alias(report_run.MODEL_NAME, report_run.ALIAS)
    assert version.run_id == runs[summary["champion"]].info.run_id
    mlflow.set_tracking_uri(prepared.uri())
    assert isinstance(mlflow.pytorch.load_model("models:/titanic-survival@champion"), torch.nn.Sequential)
    # Publishing again registers nothing new and logs no second summary.
    publish.main(only=["report"])
    assert client.get_model_version_by_alias(report_run.MODEL_NAME, report_run.ALIAS).version == version.version
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_the_champion_is_named_with_every_variant_it_cannot_be_told_apart_from(prepared):
    for name in VARIANTS:
        train.main(name)
    records = [report.read_record(name) for name in VARIANTS]
    # Made-up accuracies (replicas: seed 42 split 0, 42/1, 43/0, 43/1): mse best, nll_logsoftmax
    # close behind and noisy, nll_relu 0.25 below mse in every replica.
    made_up = {"mse": [0.80, 0.82, 0.81, 0.79], "nll_logsoftmax": [0.81, 0.80, 0.77, 0.80]}
    made_up["nll_relu"] = [a - 0.25 for a in made_up["mse"]]
    for record in records:
        for replica, value in zip(record["replicas"], made_up[record["variant"]]):
            replica["final_val_accuracy"] = value
    rows, conclusion = report.study_rows(records, config.load())
    assert conclusion["champion"] == "mse"
    assert conclusion["indistinguishable_from_champion"] == ["nll_logsoftmax"]
    assert "cannot be told apart from: nll_logsoftmax" in report.markdown(rows, conclusion)
