"""The comparison report, its summary run and the champion in the Model Registry."""
import csv
import json

import mlflow
import torch
from mlflow import MlflowClient

from pipeline import plot_titanic, publish, report, report_run, train
from pipeline.paths import REPORT

VARIANTS = ("nll_relu", "nll_logsoftmax", "mse")


def test_report_table_figures_and_champion(prepared):
    prepared.params(report={"compare": ["mse", "nll_logsoftmax"]})
    for name in VARIANTS:
        train.main(name)
    report.main()
    rows = list(csv.DictReader(open(REPORT / "comparison.csv")))
    assert [r["variant"] for r in rows] == list(VARIANTS)
    assert set(rows[0]) == set(report.COLUMNS)
    summary = json.loads((REPORT / "summary.json").read_text())
    best = max(rows, key=lambda r: float(r["final_val_accuracy"]))
    assert summary["champion"] == best["variant"]
    assert f"**{best['variant']}**" in (REPORT / "comparison.md").read_text()
    assert sorted(p.name for p in REPORT.glob("*.png")) == ["compare.png", "contrast_nll.png"]

    plot_titanic.main()
    publish.main(only=["report"])
    client = MlflowClient(prepared.uri())
    experiment = client.get_experiment_by_name("titanic-loss-functions")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted([*VARIANTS, "comparison-report"])
    summary_run = runs["comparison-report"]
    for name in VARIANTS:
        assert summary_run.data.tags[f"summarizes.{name}"] == runs[name].info.run_id
    assert {"comparison.md", "comparison.csv", "contrast_nll.png"} <= {
        a.path for a in client.list_artifacts(summary_run.info.run_id)}
    version = client.get_model_version_by_alias(report_run.MODEL_NAME, report_run.ALIAS)
    assert version.run_id == runs[summary["champion"]].info.run_id
    mlflow.set_tracking_uri(prepared.uri())
    assert isinstance(mlflow.pytorch.load_model("models:/titanic-survival@champion"), torch.nn.Sequential)
    # Publishing again registers nothing new and logs no second summary.
    publish.main(only=["report"])
    assert client.get_model_version_by_alias(report_run.MODEL_NAME, report_run.ALIAS).version == version.version
    assert len(client.search_runs([experiment.experiment_id])) == 4
