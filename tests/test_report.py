"""The comparison report, its summary run and the champion in the Model Registry."""
import csv
import json

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from pipeline.core import config
from pipeline.core.catalog import ReportFiles

STUDY_REPORT = ReportFiles("titanic")
from pipeline.core.record import TrainingRecord
from pipeline.core.summaries import ReportSummary
from pipeline.reports import dataset as report
from pipeline.reports import stage as report_stage
from pipeline.study import train
from pipeline.tracking import publish
from pipeline.tracking import report_runs as report_run
from pipeline.tracking import variant_runs

VARIANTS = ("nll_relu", "nll_logsoftmax", "mse")
REGISTERED = "titanic-survival"  # params.yaml: datasets.titanic.registered_as


def text_of_report() -> str:
    return (STUDY_REPORT.folder / "comparison.md").read_text()


def test_report_table_figures_and_champion(prepared):
    prepared.params(report={"compare": ["mse", "nll_logsoftmax"]})
    for name in VARIANTS:
        train.main("titanic", name)
    report_stage.main()
    rows = list(csv.DictReader(open(STUDY_REPORT.folder / "comparison.csv")))
    assert [r["variant"] for r in rows] == list(VARIANTS)
    assert list(rows[0]) == list(report.COLUMNS)
    summary = json.loads((STUDY_REPORT.folder / "summary.json").read_text())
    assert summary["reference"] == "nll_logsoftmax"
    assert summary["seeds"] == 2 and summary["splits"] == 2 and summary["test"].startswith("corrected resampled t")
    assert summary["margin"] == 0.01 and summary["hypotheses"] == 2 and summary["champion_rule"] in text_of_report()
    by_name = {r["variant"]: r for r in rows}
    assert by_name["nll_logsoftmax"]["verdict"] == "reference"
    assert all(r["verdict"] in ("better", "worse", "equivalent", "inconclusive", "reference") for r in rows)
    # The champion follows the rule: the reference unless a variant is better.
    better = [r for r in rows if r["verdict"] == "better"]
    assert summary["champion"] == (max(better, key=lambda r: float(r["val_accuracy_mean"]))["variant"]
                                   if better else "nll_logsoftmax")
    assert by_name["nll_relu"]["replicas"] == "4" and by_name["nll_relu"]["splits"] == "2"
    # The row's mean is the mean of the replicas' final accuracies; its interval holds it.
    record = TrainingRecord.load("mse", "titanic")
    mean = np.mean([r.summary.final_val_accuracy for r in record.replicas])
    assert float(by_name["mse"]["val_accuracy_mean"]) == pytest.approx(mean)
    assert float(by_name["mse"]["val_accuracy_ci_low"]) <= mean <= float(by_name["mse"]["val_accuracy_ci_high"])
    text = text_of_report()
    assert f"**{summary['champion']}**" in text and "corrected resampled t" in text and "Holm" in text
    assert "2 distinct hypotheses" in text and "+-0.01" in text
    assert sorted(p.name for p in STUDY_REPORT.folder.glob("*.png")) == ["compare.png", "contrast_nll.png", "intervals.png"]
    assert "NaN" not in (STUDY_REPORT.folder / "summary.json").read_text()  # standard JSON: null where there is no test

    publish.main(only=["report"])
    client = MlflowClient(prepared.uri())
    experiment = client.get_experiment_by_name("titanic-loss-functions")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted([*VARIANTS, "comparison-report"])
    summary_run = runs["comparison-report"]
    for name in VARIANTS:
        assert summary_run.data.tags[f"summarizes.{name}"] == runs[name].info.run_id
        assert summary_run.data.tags[f"verdict.{name}"] == by_name[name]["verdict"]
    assert summary_run.data.tags["champion_rule"] == summary["champion_rule"]
    assert summary_run.data.params["hypotheses"] == "2" and summary_run.data.params["study.margin"] == "0.01"
    assert {"comparison.md", "comparison.csv", "contrast_nll.png", "intervals.png"} <= {
        a.path for a in client.list_artifacts(summary_run.info.run_id)}
    version = client.get_model_version_by_alias(REGISTERED, report_run.ALIAS)
    assert version.run_id == runs[summary["champion"]].info.run_id
    champion = TrainingRecord.load(summary["champion"], "titanic")
    assert {k: version.tags[k] for k in ("variant", "record_digest", "model_code", "dataset", "verdict",
                                         "data.sha256")} == {
        "variant": summary["champion"], "record_digest": champion.digest, "model_code": variant_runs.MODEL_CODE,
        "dataset": "titanic", "verdict": "reference", "data.sha256": champion.data.sha256}
    # Evaluated where it is registered: the served model's accuracy on split 0's validation rows
    # is the study's canonical one.
    assert float(version.tags["evaluation.accuracy"]) == pytest.approx(champion.summary.final_val_accuracy, abs=1e-4)
    assert {"evaluation.log_loss", "evaluation.roc_auc", "evaluation.expected_calibration_error"} <= set(version.tags)
    # The study scored the canonical replica's probabilities as the served model answers them (log-loss:
    # continuous, where a row crossing a calibration bin's edge in float32 would move the ECE).
    scored = champion.canonical.scores
    assert float(version.tags["evaluation.log_loss"]) == pytest.approx(scored.log_loss, abs=2e-4)  # tags: 4 decimals
    assert summary["champion_rule"] in version.description and champion.data.sha256 in version.description
    mlflow.set_tracking_uri(prepared.uri())
    served = mlflow.pyfunc.load_model("models:/titanic-survival@champion")
    assert isinstance(served.unwrap_python_model().network, torch.nn.Sequential)
    # Publishing again registers nothing new and logs no second summary.
    publish.main(only=["report"])
    assert client.get_model_version_by_alias(REGISTERED, report_run.ALIAS).version == version.version
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_verdicts_identical_variants_and_the_champion_rule_on_made_up_accuracies(prepared):
    for name in VARIANTS:
        train.main("titanic", name)
    records = {name: TrainingRecord.load(name, "titanic") for name in VARIANTS}
    # Made-up accuracies (replicas: split 0, split 1, split 0, split 1): mse 3 points above the
    # reference on every replica; mse byte-identical to nll_relu, the one params list first.
    made_up = {"nll_logsoftmax": [0.80, 0.82, 0.81, 0.79], "mse": [0.83, 0.85, 0.84, 0.82]}
    made_up["nll_relu"] = made_up["mse"]

    def with_accuracies(record, values):
        replicas = [r.model_copy(update={"summary": r.summary.model_copy(update={"final_val_accuracy": v})})
                    for r, v in zip(record.replicas, values)]
        return record.model_copy(update={"replicas": replicas})

    fakes = [with_accuracies(records[name], made_up[name]) for name in VARIANTS]
    fakes[2] = fakes[2].model_copy(update={"predictions_sha256": records["nll_relu"].predictions_sha256})
    summary = report.summarise(fakes, config.load())
    by_name = summary.variants
    assert by_name["nll_relu"].verdict == "better"
    assert by_name["nll_relu"].diff_vs_reference == pytest.approx(0.03)
    assert by_name["mse"].verdict == "identical to nll_relu" and by_name["mse"].identical_to == "nll_relu"
    assert summary.hypotheses == 1 and summary.identical == {"mse": "nll_relu"}
    assert summary.champion == "nll_relu"
    text = report.markdown(summary)
    assert "Holm-corrected over 1 distinct hypotheses" in text and "mse = nll_relu" in text
    assert "- **better** than the reference, by more than the margin 0.01: nll_relu +0.030 [+0.030, +0.030]" in text
    assert "Champion: **nll_relu**" in text


def test_variants_equal_by_construction_are_one_hypothesis(prepared):
    """NLL on LogSoftmax, CrossEntropy and KLDiv on LogSoftmax are one function of the logits
    started from the same weights: the same predictions in every replica at every epoch (their
    KLDiv losses differ in the last bits). Likewise NLL and KLDiv on ReLU."""
    names = ["nll_logsoftmax", "cross_entropy", "kldiv_logsoftmax", "nll_relu", "kldiv_relu"]
    prepared.params(variants=names)
    for name in names:
        train.main("titanic", name)
    report_stage.main()
    summary = json.loads((STUDY_REPORT.folder / "summary.json").read_text())
    assert summary["reference"] == "cross_entropy"
    assert summary["identical"] == {"nll_logsoftmax": "cross_entropy", "kldiv_logsoftmax": "cross_entropy",
                                    "kldiv_relu": "nll_relu"}
    assert summary["hypotheses"] == 1
    assert summary["variants"]["kldiv_relu"]["verdict"] == "identical to nll_relu"
    assert summary["variants"]["kldiv_relu"]["p_holm"] == summary["variants"]["nll_relu"]["p_holm"]


def test_the_champion_alias_moves_only_when_the_rules_answer_or_its_model_changes(prepared):
    for name in VARIANTS:
        train.main("titanic", name)
    report_stage.main()
    publish.main(only=["report"])
    client = MlflowClient(prepared.uri())
    summary = json.loads((STUDY_REPORT.folder / "summary.json").read_text())
    first = client.get_model_version_by_alias(REGISTERED, report_run.ALIAS)
    champion = TrainingRecord.load(summary["champion"], "titanic")
    # The same champion, its run logged again (new statistics about the same model): no move.
    assert report_run.register_champion(client, REGISTERED, "another-run", champion, ReportSummary.load("titanic")) == first.version
    # The rule's answer changes: the alias moves to that variant's model, a new version.
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs(
        [client.get_experiment_by_name("titanic-loss-functions").experiment_id])}
    other = next(name for name in VARIANTS if name != summary["champion"])
    moved = report_run.register_champion(client, REGISTERED, runs[other], TrainingRecord.load(other, "titanic"),
                                         ReportSummary.load("titanic").model_copy(update={"champion": other}))
    assert moved != first.version
    assert client.get_model_version_by_alias(REGISTERED, report_run.ALIAS).tags["variant"] == other
