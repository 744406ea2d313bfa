"""Publishing to a real SQLite store, read back through MlflowClient."""
import json
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient

from pipeline.core.catalog import ReportFiles, VariantFiles
from pipeline.core.summaries import ReportSummary

STUDY_REPORT = ReportFiles("titanic")
from pipeline.reports import stage as report_stage
from pipeline.study import train
from pipeline.data.preprocess import load_prepared
from pipeline.core.record import TrainingRecord
from pipeline.data.splits import split_arrays
from pipeline.tracking import publish
from pipeline.tracking import store as tracking
from pipeline.tracking import variant_runs as variant_run

from .conftest import ROOT

VARIANTS = ("nll_relu", "nll_logsoftmax", "mse")


@pytest.fixture
def trained(prepared):
    for name in VARIANTS:
        train.main("titanic", name)
    report_stage.main()
    return prepared


def runs(uri, **kwargs):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.experiment("titanic"))
    return client, client.search_runs([experiment.experiment_id], **kwargs) if experiment else []


def test_each_variant_becomes_one_complete_run(trained):
    publish.main(only=list(VARIANTS))
    uri = trained.uri()
    client, found = runs(uri)
    by_name = {run.info.run_name: run for run in found}
    assert sorted(by_name) == sorted(VARIANTS)
    run = by_name["nll_relu"]
    record = TrainingRecord.load("nll_relu", "titanic")
    times = json.loads(VariantFiles("nll_relu", "titanic").run_times.read_text())
    stats = json.loads(STUDY_REPORT.summary.read_text())["variants"]["nll_relu"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["pipeline.trained_ms"] == f"{times['started_ms']}-{times['ended_ms']}"
    params = run.data.params
    assert params["loss"] == "NLLLoss" and params["last_activation"] == "ReLU"
    assert params["target_encoding"] == "index" and params["optimizer"] == "adam"
    assert params["lr"] == "0.001" and params["batch_size"] == "32" and params["epochs"] == "2"
    assert params["seed"] == "42" and params["layer_sizes"] == "4-64-64-2"
    assert params["regularization.penalty"] == "none" and params["standardize"] == "True"
    assert params["data.source"] == "url" and params["data.sha256"] == record.data.sha256
    assert (params["study.seeds"], params["study.splits"], params["study.replicas"]) == ("2", "2", "4")
    assert params["study.reference"] == "nll_logsoftmax" and params["study.confidence"] == "0.95"
    assert params["study.margin"] == "0.01"
    # The run's params are the training's alone: the served model's spec is an artifact, not
    # params MLflow would draw as axes of the compare view's parallel coordinates.
    assert set(params) == set(variant_run.run_params(record, {}, ReportSummary.load("titanic"))), sorted(params)
    tags = run.data.tags
    assert tags["variant"] == "nll_relu" and tags["loss_family"] == "nll" and tags["contrast"] == "nll"
    assert tags["last_activation"] == "ReLU" and tags["diagnosis"] == record.diagnosis.status
    assert tags["diagnoses"] == stats["diagnoses"] and tags["verdict"] == stats["verdict"]
    assert stats["verdict"] in tags["mlflow.note.content"] and "champion" in tags["mlflow.note.content"]
    assert {f"diagnoses.{status}" for status in record.diagnoses} <= set(tags)
    assert by_name["nll_logsoftmax"].data.tags["contrast"] == "nll"
    assert "contrast" not in by_name["mse"].data.tags
    # The plain names are the replicas' mean, the canonical run's end in _canonical.
    history = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (e + 1, mean, stamp) for e, (mean, stamp) in enumerate(zip(record.curves["val_accuracy"].mean, times["epoch_ms"]))]
    canonical = client.get_metric_history(run.info.run_id, "val/accuracy_canonical")
    assert [(m.step, m.value) for m in canonical] == [(h.epoch, h.val_accuracy) for h in record.history]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")] == record.curves["train_loss"].mean
    band = client.get_metric_history(run.info.run_id, "val/accuracy_max")
    assert [m.value for m in band] == record.curves["val_accuracy"].max
    # The compare view plots the first metric a run logged: the replicas' mean accuracy.
    assert run.data._metric_objs[0].key == "val/accuracy"
    metrics = run.data.metrics
    # To 4 significant digits, as the view shows them; the report holds every digit.
    assert metrics["study.val_accuracy_mean"] == float(f"{stats['val_accuracy_mean']:.4g}")
    assert metrics["study.val_accuracy_ci_low"] == float(f"{stats['val_accuracy_ci_low']:.4g}")
    assert metrics["study.diff_vs_reference"] == float(f"{stats['diff_vs_reference']:.4g}")
    assert metrics["study.p_equivalence_holm"] == pytest.approx(stats["p_equivalence_holm"], rel=1e-3)
    assert metrics["study.p_improvement_ci_high"] == pytest.approx(stats["p_improvement_ci_high"], rel=1e-3)
    # Each artifact is the file on disk, under the catalog's name, byte for byte.
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    files = VariantFiles("nll_relu", "titanic")
    assert {path.name for path in files.artifacts()} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="history.csv",
                                                tracking_uri=uri)
    assert open(local, "rb").read() == files.history.read_bytes()
    contexts = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    assert contexts["training"].name == "titanic-train" and contexts["validation"].name == "titanic-val"
    assert tracking.artifact_location(uri).endswith("/mlartifacts")
    assert run.info.artifact_uri.startswith(tracking.artifact_location(uri))


def test_the_logged_model_takes_the_files_rows_and_answers_as_the_study_counted(trained):
    """The run's model is the served one: raw rows in (named, typed columns), the canonical
    network inside, each row's label the class the study counted for it."""
    import pandas as pd

    from pipeline.core import config
    from pipeline.study.losses import predict
    from pipeline.tracking.served_spec import Table

    publish.main(only=list(VARIANTS))
    _, found = runs(trained.uri(), filter_string="tags.variant = 'mse'")
    model_id = found[0].outputs.model_outputs[0].model_id
    mlflow.set_tracking_uri(trained.uri())
    info = mlflow.models.get_model_info(f"models:/{model_id}")
    assert [(c["name"], c["type"]) for c in info.signature.inputs.to_dict()] == [
        ("Pclass", "long"), ("Sex", "string"), ("Age", "double"), ("Fare", "double")]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["p_survived", "survived"]
    assert info.saved_input_example_info is not None
    served = mlflow.pyfunc.load_model(f"models:/{model_id}")
    record = TrainingRecord.load("mse", "titanic")
    original = variant_run.load_model(record)
    network = served.unwrap_python_model().network
    assert all(torch.equal(a, b) for a, b in zip(network.state_dict().values(), original.state_dict().values()))
    # Every column of the file, as it has them (Name, Embarked, ...: ignored).
    prepared = load_prepared("titanic")
    rows = Table.read(config.load().dataset("titanic"), config.load().seed).validation_rows(prepared)
    assert isinstance(rows, pd.DataFrame) and "Embarked" in rows.columns
    answer = served.predict(rows)
    with torch.no_grad():
        outputs = original(torch.from_numpy(split_arrays(prepared, 0, record.scaler.model_dump())["x_val"]))
    assert answer["survived"].tolist() == predict(outputs, "Sigmoid").tolist()
    assert np.allclose(answer["p_survived"], outputs[:, 0].numpy())  # Sigmoid's output is the probability
    assert (answer["survived"] == prepared["y"][prepared["val_index"][0]]).mean() == pytest.approx(
        record.summary.final_val_accuracy)


def test_contrast_runs_are_logged_last_so_the_chart_view_shows_them_first(trained):
    publish.main(only=list(VARIANTS))
    _, found = runs(trained.uri(), order_by=["attributes.start_time DESC"])
    assert [run.info.run_name for run in found] == ["nll_logsoftmax", "nll_relu", "mse"]
    summary = SimpleNamespace(reference="l1", champion="cross_entropy")
    records = [SimpleNamespace(variant=name, config=SimpleNamespace(contrast=contrast)) for name, contrast in (
        ("nll_relu", "nll"), ("l1", None), ("mse", None), ("cross_entropy", None), ("nll_logsoftmax", "nll"))]
    assert [r.variant for r in publish.logging_order(records, summary)] == [
        "mse", "l1", "cross_entropy", "nll_relu", "nll_logsoftmax"]


def test_variant_runs_need_the_report_made_from_the_same_results(trained):
    train.main("titanic", "mse")  # the same numbers: still current
    publish.main(only=["mse"])
    STUDY_REPORT.summary.write_text(STUDY_REPORT.summary.read_text().replace(TrainingRecord.load("mse", "titanic").digest, "0" * 64))
    with pytest.raises(publish.PipelineError, match="run `dvc repro report` first"):
        publish.main(only=["nll_relu", "mse"])


def test_publishing_twice_logs_nothing_twice(trained, capsys):
    publish.main(only=list(VARIANTS))
    publish.main(only=list(VARIANTS))
    assert "0 run(s) logged, 3 already in MLflow" in capsys.readouterr().out
    _, found = runs(trained.uri())
    assert len(found) == 3


def test_a_half_logged_run_is_replaced_and_only_missing_runs_are_logged(trained):
    publish.main(only=list(VARIANTS))
    client, found = runs(trained.uri())
    by_name = {run.info.run_name: run for run in found}
    # As if a publish died mid-run: the mse run is left RUNNING; the nll_relu run was never made.
    client.update_run(by_name["mse"].info.run_id, status="RUNNING")
    client.delete_run(by_name["nll_relu"].info.run_id)
    untouched = by_name["nll_logsoftmax"].info.run_id
    publish.main(only=list(VARIANTS))
    _, after = runs(trained.uri())
    names = sorted(run.info.run_name for run in after)
    assert names == sorted(VARIANTS)
    assert all(run.info.status == "FINISHED" for run in after)
    assert untouched in {run.info.run_id for run in after}
    assert by_name["mse"].info.run_id not in {run.info.run_id for run in after}


def test_tracking_uri_override_and_dvc_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@127.0.0.1:5999")
    assert tracking.tracking_uri() == "http://user:secret@127.0.0.1:5999"
    assert tracking.artifact_location(tracking.tracking_uri()) is None
    assert "secret" not in tracking.redact(tracking.tracking_uri())


def test_an_unreachable_server_fails_in_one_line_and_keeps_training_results(trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(publish.PipelineError, match="publishing to MLflow at http://127.0.0.1:9 failed"):
        publish.main(only=list(VARIANTS))
    assert all(VariantFiles(name, "titanic").model.exists() for name in VARIANTS)


def test_a_relative_sqlite_uri_means_the_project_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"


@pytest.mark.slow
def test_a_locked_sqlite_store_is_waited_for_not_lost(trained, capsys):
    """Two DVC workers publishing to one SQLite file: a writer holding the lock past MLflow's
    20 s busy timeout makes publish wait and try again, and every run still arrives once."""
    import sqlite3
    import threading

    publish.main(only=["mse"])  # creates the store
    holder = sqlite3.connect(trained.path / "mlflow.db", check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(25, lambda: (holder.rollback(), holder.close()))
    release.start()
    try:
        publish.main(only=list(VARIANTS))
    finally:
        release.join()
    assert "is locked by another writer; retrying" in capsys.readouterr().err
    _, found = runs(trained.uri())
    assert sorted(run.info.run_name for run in found) == sorted(VARIANTS)
    assert all(run.info.status == "FINISHED" for run in found)


def test_runs_of_dvc_experiments_carry_their_name_and_only_mains_latest_study_is_current(trained, monkeypatch):
    """Three experiments, then main adopting the last: the README's search (contrast and current)
    finds main's NLL pair alone at every step; an experiment's runs say whose they are."""
    from pipeline.tracking import study_view

    names = [*VARIANTS, "report"]
    search = "tags.contrast = 'nll' and tags.current = 'yes'"
    publish.main(only=names)
    client, first = runs(trained.uri(), filter_string=search)
    assert sorted(r.info.run_name for r in first) == ["nll_logsoftmax", "nll_relu"]
    for n, lr in enumerate((0.002, 0.003, 0.004)):
        trained.params(**{"train.lr": lr})
        for name in VARIANTS:
            train.main("titanic", name)
        report_stage.main()
        monkeypatch.setenv("DVC_EXP_NAME", f"exp-{n}")
        publish.main(only=names)
        monkeypatch.delenv("DVC_EXP_NAME")
        assert {r.info.run_id for r in runs(trained.uri(), filter_string=search)[1]} == {r.info.run_id for r in first}
    _, every = runs(trained.uri())
    assert len(every) == 4 * 4
    assert sorted(r.info.run_name for r in every if r.data.tags.get("variant") == "nll_relu") == [
        "nll_relu", "nll_relu (exp-0)", "nll_relu (exp-1)", "nll_relu (exp-2)"]
    assert "comparison-report (exp-2)" in {r.info.run_name for r in every}
    # `dvc exp apply exp-2` on main, then publish: main adopts exp-2's runs (the same digests).
    last = {r.info.run_id for r in every if r.data.tags.get("dvc.exp_name") == "exp-2"}
    publish.main(only=names)
    _, after = runs(trained.uri())
    assert len(after) == 16  # nothing logged again
    current = {r.info.run_id: r.info.run_name for r in after if r.data.tags.get(study_view.CURRENT_TAG) == "yes"}
    assert set(current) == last and sorted(current.values()) == sorted([*VARIANTS, "comparison-report"])
    assert sorted(r.info.run_name for r in runs(trained.uri(), filter_string=search)[1]) == ["nll_logsoftmax", "nll_relu"]
    superseded = sorted(r.info.run_name for r in after if r.info.run_id in {f.info.run_id for f in first})
    assert superseded == ["nll_logsoftmax (superseded)", "nll_relu (superseded)"]
    # The experiment opens on the saved view of the current runs, with the study's columns.
    experiment = client.get_experiment_by_name(tracking.experiment("titanic"))
    view = json.loads(experiment.tags[study_view.VIEW_TAG])
    assert view["searchFilter"] == "tags.current = 'yes'" and "metrics.`study.val_accuracy_mean`" in view["selectedColumns"]
    assert study_view.view_path(experiment.experiment_id) in experiment.tags["mlflow.note.content"]
    summary = ReportSummary.load("titanic")
    assert experiment.tags["mlflow.note.content"].startswith(
        f"The loss study on titanic. {summary.champion} is the champion, mean accuracy "
        f"{summary.variants[summary.champion].val_accuracy_mean:.3f} [")


def test_views_prints_each_datasets_study_view_once_published(trained, capsys):
    """`python -m pipeline views URL` (what `make ui` prints): before any publish it says how to
    fill the store; after, a link per dataset to its saved view, one not published said so."""
    from pipeline.__main__ import main as cli
    from pipeline.tracking import study_view

    assert not (trained.path / "mlflow.db").exists()
    assert cli(["views", "http://127.0.0.1:5123/"]) == 0
    assert "no runs yet" in capsys.readouterr().out and not (trained.path / "mlflow.db").exists()
    publish.main(only=[*VARIANTS, "report"])
    capsys.readouterr()
    trained.params(datasets=["titanic", "wine"])
    assert cli(["views", "http://127.0.0.1:5123/"]) == 0
    client, _ = runs(trained.uri())
    titanic = client.get_experiment_by_name(tracking.experiment("titanic")).experiment_id
    lines = capsys.readouterr().out.splitlines()
    link = f"http://127.0.0.1:5123/{study_view.view_path(titanic)}"
    assert lines[0] == f"open first: the study on titanic, {link}"  # nothing across datasets published here
    assert lines[1].startswith("titanic") and link in lines[1]
    assert lines[2].startswith("wine") and "not published yet" in lines[2]
    assert '"Model training"' in lines[3] and len(lines) == 4  # how a run clicked in a table opens among runs


def test_publishers_that_meet_agree_on_the_current_study_without_taking_turns(tmp_path):
    """Two publishes on main of different studies at once: the one that began later is current
    whichever settles last, a second pass of either changes nothing (no endless back and forth),
    and a variant the later study lacks is no longer current."""
    from pipeline.tracking import study_view

    def store(name: str):
        client = MlflowClient(f"sqlite:///{tmp_path / name}")
        return client, client.create_experiment("titanic-loss-functions")

    def study(*variants):
        runs = {name: client.create_run(exp, run_name=name, tags={"variant": name}) for name in variants}
        return {name: client.get_run(run.info.run_id) for name, run in runs.items()}

    client, exp = store("mlflow.db")
    older, later = study("nll_relu", "mse", "l1"), study("nll_relu", "mse")
    roles_older, roles_later = {"nll_relu", "mse", "l1"}, {"nll_relu", "mse"}
    assert study_view.mark_current(client, exp, later, roles_later, since=200)
    assert study_view.mark_current(client, exp, older, roles_older, since=100)  # it claims, and loses
    for _ in range(2):
        assert not study_view.mark_current(client, exp, later, roles_later, since=200)
        assert not study_view.mark_current(client, exp, older, roles_older, since=100)
    current = client.search_runs([exp], f"tags.{study_view.CURRENT_TAG} = 'yes'")
    assert {r.info.run_id for r in current} == {r.info.run_id for r in later.values()}
    # The other order: the older study current first, then the later one supersedes it, l1 too.
    client, exp = store("other.db")
    older, later = study("nll_relu", "mse", "l1"), study("nll_relu", "mse")
    assert study_view.mark_current(client, exp, older, roles_older, since=100)
    assert len(client.search_runs([exp], f"tags.{study_view.CURRENT_TAG} = 'yes'")) == 3
    assert study_view.mark_current(client, exp, later, roles_later, since=200)
    assert not study_view.mark_current(client, exp, older, roles_older, since=100)
    every = {r.info.run_id: r for r in client.search_runs([exp])}
    assert sorted(r.info.run_name for r in every.values() if r.data.tags.get(study_view.CURRENT_TAG) == "yes") == [
        "mse", "nll_relu"]
    assert sorted(r.info.run_name for r in every.values() if r.info.run_id in {o.info.run_id for o in older.values()}) == [
        "l1 (superseded)", "mse (superseded)", "nll_relu (superseded)"]


def test_a_launch_standing_for_every_run_of_the_default_study_settles(tmp_path):
    """`mlflow run` on the default study stands for 147 runs: its launch run names each in a tag
    and its note stays within MLflow's 8000 characters, so a second look finds nothing to change
    (a note of a line per run was truncated by MLflow, differed at every look, and publish gave up
    after 30 passes)."""
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    launch_id = client.create_run(client.create_experiment("launches")).info.run_id
    launch = publish.Launch(client, launch_id, None)
    names = [f"{dataset}/{kind}{variant}" for dataset in ("titanic", "penguins", "breast_cancer", "wine", "digits")
             for kind in ("", "tuned/") for variant in yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]]
    runs = {name: ("logged" if i % 3 else "present", f"{i:032x}") for i, name in enumerate([*names, "across", "sweep"])}
    assert launch.stands_for(runs) is True
    assert launch.stands_for(runs) is False  # settled: what it wrote is what MLflow holds
    tags = client.get_run(launch_id).data.tags
    assert len(tags["mlflow.note.content"]) <= MAX_TAG_VAL_LENGTH and f"for {len(runs)} runs" in tags["mlflow.note.content"]
    assert all(tags[f"pipeline.run.{name}"] == run_id for name, (_, run_id) in runs.items())
    with pytest.raises(ValueError, match="tag mlflow.note.content: over MLflow's 8000 characters"):
        tracking.retag(client, client.get_run(launch_id), {"mlflow.note.content": "x" * (MAX_TAG_VAL_LENGTH + 1)})


def test_the_across_description_opens_on_the_answer_per_variant():
    """The view across datasets opens on the Bayesian answer per variant, read at the study's
    confidence as the page's paragraph reads it: a region at 0.95 or more names the variant there,
    none that likely says so; copies and unsound pairings set apart; nothing without the test."""
    from pipeline.core.summaries import AcrossSummary, AgainstReference
    from pipeline.tracking import study_view

    def row(variant, worse, within, better):
        return AgainstReference(variant=variant, datasets=5, mean_diff=0.0, p_worse=worse, p_equivalent=within,
                                p_better=better, wilcoxon_p=None, wilcoxon_p_holm=None)

    summary = AcrossSummary.model_construct(
        reference="cross_entropy", confidence=0.95, rope=0.01, set_apart={"nll_relu": "unsound pairing: ..."},
        against_reference=[row("mse", 0.0, 0.95, 0.05), row("l1", 0.06, 0.94, 0.0), row("unscaled", 0.98, 0.02, 0.0)])
    assert study_view.across_answer(summary) == (
        "Against cross_entropy, the Bayesian signed-rank test over these datasets (rope +-0.01) gives at least "
        "0.95 posterior probability to within the rope for mse; to worse by more for unscaled; to no region for "
        "l1. Set apart (an unsound pairing or a copy): nll_relu. ")
    assert study_view.across_answer(summary.model_copy(update={"against_reference": []})) == ""
