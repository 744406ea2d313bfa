"""The Iris alpha sweep: data, fits, the GIF, bad settings, and its MLflow runs."""
import json

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image

from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.iris import sweep as sweep_alpha
from pipeline.iris.preprocess import load_prepared
from pipeline.core.catalog import SWEEP_GIF, SWEEP_METRICS, SWEEP_RECORD, SWEEP_SUMMARY, SWEEP_TABLE
from pipeline.tracking import iris_runs as iris_run
from pipeline.tracking import publish

from .conftest import ROOT


def seed_settings(**changes) -> config.IrisSweep:
    return config.IrisSweep(**{**config.as_dict(config.load(ROOT / "params.yaml").iris), **changes})


def test_the_seeds_data(iris_prepared):
    data = load_prepared()
    assert data["x_train"].shape == (70, 2) and data["x_test"].shape == (30, 2)
    assert set(np.unique(data["y_train"])) == {0, 1}
    assert np.allclose(data["x_train"].mean(axis=0), 0) and np.allclose(data["x_train"].std(axis=0), 1)


def test_default_alphas_are_the_seeds():
    assert np.allclose(config.load(ROOT / "params.yaml").iris.alphas(), np.logspace(-3, 3, 20))


def test_gif_table_and_summary(iris_prepared):
    sweep_alpha.main()
    gif = Image.open(SWEEP_GIF)
    assert gif.n_frames == 20 and gif.info["loop"] == 0 and gif.info["duration"] == 500
    sizes = set()
    for index in range(gif.n_frames):
        gif.seek(index)
        sizes.add(gif.size)
    assert len(sizes) == 1
    assert SWEEP_SUMMARY.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = SWEEP_TABLE.read_text().splitlines()
    assert lines[0] == "alpha,log10_alpha,train_accuracy,test_accuracy,weight_l2_norm,n_iter" and len(lines) == 21
    summary = json.loads(SWEEP_METRICS.read_text())
    # The seed's lesson: a large penalty shrinks the weights until the boundary collapses.
    assert summary["test_accuracy_at_max_alpha"] < summary["test_accuracy_at_min_alpha"]
    assert summary["weight_l2_norm_at_max_alpha"] < summary["weight_l2_norm_at_min_alpha"]
    assert summary["frames"] == 20


def test_same_seed_same_results_in_parallel_or_not(iris_prepared):
    data = load_prepared()
    settings = seed_settings(alpha_count=6)
    rows, frames = sweep_alpha.sweep(data, settings, 42, draw=True)
    rows_alone, frames_alone = sweep_alpha.sweep(data, seed_settings(alpha_count=6, workers=1), 42, draw=True)
    assert rows == rows_alone
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames_alone))
    assert sweep_alpha.sweep(data, settings, 7)[0] != rows


def test_ridge_is_the_other_model(iris_prepared):
    rows, _ = sweep_alpha.sweep(load_prepared(), seed_settings(model="ridge", alpha_count=3, workers=1), 42)
    assert [r["n_iter"] for r in rows] == [None] * 3
    assert rows[-1]["weight_l2_norm"] < rows[0]["weight_l2_norm"]


@pytest.mark.parametrize("change,message", [
    ({"alpha_count": 0}, "iris.alpha_count: must be >= 1"),
    ({"alpha_min": 0}, "iris.alpha_min: must be > 0"),
    ({"alpha_min": -1, "alpha_max": -0.1}, "iris.alpha_max: must be > 0"),
    ({"alpha_min": 10, "alpha_max": 1}, "iris.alpha_max: 1 is below iris.alpha_min 10"),
    ({"model": "svm"}, "iris.model: unknown value 'svm' (choose from mlp, ridge)"),
])
def test_bad_sweep_settings_fail_in_one_line(change, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["iris"].update(change)
    with pytest.raises(PipelineError) as caught:
        config.parse(raw)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_sweep_publishes_a_parent_and_one_child_per_alpha(iris_prepared, monkeypatch):
    path = iris_prepared.params(**{"iris.alpha_count": 5})
    assert config.load(path).iris.alpha_count == 5
    sweep_alpha.main()
    record = json.loads(SWEEP_RECORD.read_text())
    client = MlflowClient(iris_prepared.uri())
    outcome = publish.publish([], record, iris_prepared.uri())
    assert outcome["sweep"][0] == "logged"
    experiment = client.get_experiment_by_name(iris_run.EXPERIMENT)
    assert experiment.tags["mlflow.note.content"].startswith("The alpha sweep on Iris")  # what the list shows
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 5
    assert parents[0].data.params["model"] == "mlp" and parents[0].data.params["alpha_count"] == "5"
    assert {"alpha_sweep.gif", "alpha_summary.png", "alpha_sweep.csv", "sweep.json"} <= {
        a.path for a in client.list_artifacts(parents[0].info.run_id)}
    by_alpha = {float(r.data.params["alpha"]): r for r in children}
    for row in record["rows"]:
        child = by_alpha[row["alpha"]]
        assert child.data.metrics["test_accuracy"] == row["test_accuracy"]
        assert child.data.metrics["weight_l2_norm"] == row["weight_l2_norm"]
        assert child.data.params["neurons"] == "10"
    history = client.get_metric_history(parents[0].info.run_id, "test_accuracy")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [r["test_accuracy"] for r in record["rows"]]
    # Again: nothing logged twice. Interrupted: the leftovers are replaced whole.
    assert publish.publish([], record, iris_prepared.uri())["sweep"] == ("present", parents[0].info.run_id)
    client.update_run(parents[0].info.run_id, status="RUNNING")
    assert publish.publish([], record, iris_prepared.uri())["sweep"][0] == "logged"
    assert len(client.search_runs([experiment.experiment_id])) == 6
