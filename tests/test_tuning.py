"""The tuned study (study/tuning.py): each split's learning rate chosen on its own training rows."""
import dataclasses
import math

import numpy as np
import pytest

from pipeline.core import config
from pipeline.core.record import TrainingRecord
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas
from pipeline.study import train, tuning

GRID = (0.001, 0.01, 0.1)


def test_the_best_inner_accuracy_wins_and_ties_go_to_the_nearest_rate_then_the_smaller():
    accuracy = np.array([
        [0.70, 0.80, 0.80, 0.90, math.nan, math.nan],   # 0.001
        [0.80, 0.80, 0.70, 0.90, math.nan, 0.50],       # 0.01
        [0.60, 0.70, 0.80, 0.90, math.nan, math.nan],   # 0.1
    ])
    # Split 0: the best. Split 1: 0.001 and 0.01 tie, and 0.001 is nearer the own rate 0.003 on a log
    # scale (1.10 against 1.20). Split 2: 0.001 and 0.1 tie, 0.001 nearer. Split 3: all tie. Split 4:
    # every run broke: the own rate. Split 5: the one run that did not break, however poor.
    assert tuning.choose(accuracy, GRID, 0.003) == [0.01, 0.001, 0.001, 0.001, 0.003, 0.01]
    # Equally near on a log scale (0.001 and 0.1 around 0.01): the smaller.
    assert tuning.choose(np.array([[0.8], [0.7], [0.8]]), GRID, 0.01) == [0.001]


def test_the_inner_parts_split_each_training_part_and_never_hold_its_validation_rows(prepared):
    data = load_prepared("titanic")
    part = tuning.inner(data, 42, 0.2)
    for k in range(data["train_index"].shape[0]):
        inner_train, inner_val = set(part["train_index"][k]), set(part["val_index"][k])
        assert not inner_train & inner_val
        assert inner_train | inner_val == set(data["train_index"][k])
        assert not (inner_train | inner_val) & set(data["val_index"][k])
        assert len(inner_val) == math.ceil(0.2 * data["train_index"].shape[1])
    # Drawn from the split's own random_state, so the same params give the same parts.
    again = tuning.inner(data, 42, 0.2)
    assert all(np.array_equal(part[key], again[key]) for key in ("train_index", "val_index"))


def _choice(params: config.Params, data: dict):
    variant = params.variant("mse")
    study = replicas(params.seed, params.study.seeds, params.study.splits)
    fixed = train.train(variant, study, data, progress=False)
    return train.tuned(variant, study, data, 2, dataclasses.replace(params.tuning, lr=GRID), params.seed, fixed)


def test_the_split_validation_rows_never_reach_the_choice(prepared):
    """Rewriting every validation row of split 0 (features to noise, labels flipped) leaves split 0's
    choice and every inner accuracy it rests on unchanged, while the replicas judged on those rows
    see the change; rewriting its training rows the same way moves the inner accuracies."""
    params = config.load("params.yaml")
    data = load_prepared("titanic")
    trained, choice = _choice(params, data)

    def rewritten(rows):
        changed = {**data, "x": data["x"].copy(), "y": data["y"].copy()}
        changed["x"][rows] = np.random.default_rng(0).normal(size=changed["x"][rows].shape) * 5
        changed["y"][rows] = 1 - changed["y"][rows]
        return changed

    held_out = data["val_index"][0]
    trained_again, again = _choice(params, rewritten(held_out))
    assert [column[0] for column in again.inner_accuracy] == [column[0] for column in choice.inner_accuracy]
    assert again.chosen[0] == choice.chosen[0]
    assert not np.array_equal(trained_again.val_accuracy[0], trained.val_accuracy[0])
    # The test can fail: split 0's own training rows do reach its choice.
    _, moved = _choice(params, rewritten(data["train_index"][0]))
    assert [column[0] for column in moved.inner_accuracy] != [column[0] for column in choice.inner_accuracy]


def test_a_split_at_the_variants_own_rate_keeps_the_fixed_replicas_which_retraining_reproduces(prepared):
    params = config.load("params.yaml")
    data = load_prepared("titanic")
    variant = params.variant("mse")
    study = replicas(params.seed, params.study.seeds, params.study.splits)
    fixed = train.train(variant, study, data, progress=False)
    # A grid where one rate is the variant's own (0.001) and the others cannot train: every split keeps it.
    grid = dataclasses.replace(params.tuning, lr=(0.001, 1e6))
    tuned, choice = train.tuned(variant, study, data, 2, grid, params.seed, fixed)
    assert choice.chosen == [0.001, 0.001]
    assert np.array_equal(tuned.val_accuracy, fixed.val_accuracy)
    # ... which is what training those replicas again at that rate gives, to the byte (a batch of one).
    alone = train.train(variant, [study[1]], data, progress=False)
    assert np.array_equal(alone.train_loss[0], fixed.train_loss[1])
    assert np.array_equal(alone.val_accuracy[0], fixed.val_accuracy[1])


def test_the_stage_writes_the_tuned_record_beside_the_fixed_one(prepared, capsys):
    prepared.params(**{"tuning.enabled": True})
    train.main("titanic", "mse")
    fixed, tuned = TrainingRecord.load("mse", "titanic"), TrainingRecord.load("mse", "titanic", tuned=True)
    assert fixed.tuned is None and tuned.tuned.grid == [0.001, 0.01]
    assert len(tuned.tuned.chosen) == 2 and set(tuned.tuned.chosen) <= {0.001, 0.01}
    assert np.array(tuned.tuned.inner_accuracy).shape == (2, 2) and tuned.tuned.inner_share == 0.2
    assert [(r.seed, r.split) for r in tuned.replicas] == [(r.seed, r.split) for r in fixed.replicas]
    assert "tuned: mean" in capsys.readouterr().out


def test_tuning_off_writes_no_tuned_record(prepared):
    prepared.params(**{"tuning.enabled": False})
    train.main("titanic", "mse")
    with pytest.raises(Exception, match="tuned.json: not found"):
        TrainingRecord.load("mse", "titanic", tuned=True)


@pytest.mark.parametrize("grid, message", [
    ([0.01], "tuning.lr: must list two or more values to choose from, got 1"),
    ([0.01, 0.001], "tuning.lr: must list distinct values in increasing order, got 0.01, 0.001"),
    ([0.001, -1.0], "tuning.lr.1: must be > 0, got -1.0"),
])
def test_a_wrong_grid_is_one_line_naming_the_key(project, grid, message):
    from tests.conftest import small_params

    raw = small_params()
    raw["tuning"]["lr"] = grid
    with pytest.raises(Exception, match=message.replace(".", r"\.").replace("(", r"\(")):
        config.parse(raw)


def test_the_tuned_study_is_reported_beside_the_fixed_one_and_published_apart(prepared):
    from mlflow import MlflowClient

    from pipeline.core.catalog import ACROSS_CHOSEN, ACROSS_MD, ReportFiles
    from pipeline.core.record import dataset_records
    from pipeline.core.summaries import AcrossSummary, ReportSummary
    from pipeline.reports import stage as report_stage
    from pipeline.tracking import publish, study_view, variant_runs

    prepared.params(**{"tuning.enabled": True})
    params = config.load("params.yaml")
    train.main("titanic")
    report_stage.main()
    text = ReportFiles("titanic").comparison_md.read_text()
    assert "## Each loss at its best learning rate (the tuned study)" in text
    assert "Verdicts that change when each loss gets its own rate:" in text
    tuned, fixed = ReportSummary.load("titanic", tuned=True), ReportSummary.load("titanic")
    records = dataset_records(params, "titanic", tuned=True)
    assert tuned.digests == {r.variant: r.digest for r in records} and fixed.chosen_lr is None
    # Each variant's rates, counted over its splits, as its record holds them.
    assert tuned.chosen_lr == {r.variant: {f"{lr:g}": r.tuned.chosen.count(lr) for lr in sorted(set(r.tuned.chosen))}
                               for r in records}
    for name, row in fixed.variants.items():
        assert f"| {name} | " in text and row.verdict in text and tuned.variants[name].verdict in text
    assert AcrossSummary.load(tuned=True).reference == fixed.reference
    assert ACROSS_CHOSEN.exists() and "## Each loss at its best learning rate, across datasets" in ACROSS_MD.read_text()

    publish.main(only=["report"])
    client = MlflowClient(prepared.uri())
    exp = client.get_experiment_by_name("titanic-loss-functions").experiment_id
    runs = client.search_runs([exp], "tags.study = 'tuned'")
    assert sorted(r.info.run_name for r in runs) == ["mse (tuned lr)", "nll_logsoftmax (tuned lr)",
                                                     "nll_relu (tuned lr)"]
    for run in runs:
        name = run.data.tags["tuned_variant"]
        assert run.data.tags["verdict"] == tuned.variants[name].verdict
        assert run.data.metrics["study.val_accuracy_mean"] == pytest.approx(tuned.variants[name].val_accuracy_mean,
                                                                            rel=1e-3)
        assert run.data.params["lr_per_split"] == ",".join(
            f"{lr:g}" for lr in next(r for r in records if r.variant == name).tuned.chosen)
        assert study_view.CURRENT_TAG not in run.data.tags  # the study view's current runs are the fixed study's
    assert len(client.search_runs([exp], f"tags.study = 'fixed' and tags.{study_view.CURRENT_TAG} = 'yes'")) == 3
    # Published again: nothing new.
    publish.main(only=["report"])
    assert len(client.search_runs([exp], "tags.study = 'tuned'")) == 3
    # The page across datasets' run holds the tuned page's figures beside the fixed one's.
    publish.main(only=["across"])
    [across] = client.search_runs([client.get_experiment_by_name("loss-functions-across-datasets").experiment_id])
    page = AcrossSummary.load(tuned=True)
    for row in page.variants:
        assert across.data.tags[f"tuned.verdicts.{row.variant}"] == row.verdicts
        assert across.data.metrics[f"tuned.across.diff/{row.variant}"] == variant_runs.readable(row.diff)
    assert across.data.tags["tuned.separates"] == page.separates
