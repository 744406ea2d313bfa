"""The served model's parts on made-up and shipped data: raw rows to the network's input (the
same bytes as training's), refusals naming the column, probabilities, the evaluation's metrics."""
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from pipeline import config
from pipeline.study.splits import scaler, split_arrays
from pipeline.tracking import evaluation, served_model, served_spec

from .test_datasets import prepare


def test_raw_penguin_rows_become_exactly_what_training_fed_the_network(project):
    """Categorical island and sex one-hot as preprocessing did, an island the split's training
    rows never show zeroed (in validation too), scaled with the training part's scaler."""
    prepared, _ = prepare(project, "penguins")
    torgersen = 2  # island=Torgersen
    x = prepared["x"]
    others, theirs = np.flatnonzero(x[:, torgersen] == 0), np.flatnonzero(x[:, torgersen] == 1)
    split = {**prepared, "train_index": others[None, :200],
             "val_index": np.concatenate([theirs[:10], others[200:230]])[None, :]}
    table = served_spec.Table.read(config.load().dataset("penguins"))
    rows = table.validation_rows(split)
    assert set(rows["island"][:10]) == {"Torgersen"} and "year" in rows.columns  # the file's columns, all
    spec = served_spec.preprocessing(table, split, scaler(split, 0))
    assert spec["zeroed"] == [torgersen]
    np.testing.assert_array_equal(served_model.features(rows, spec), split_arrays(split, 0)["x_val"])
    types = {f["name"]: f["type"] for f in spec["features"]}
    assert types == {"island": "string", "bill_length_mm": "double", "bill_depth_mm": "double",
                     "flipper_length_mm": "double", "body_mass_g": "double", "sex": "string"}


@pytest.fixture
def titanic(project):
    prepared, _ = prepare(project, "titanic")
    table = served_spec.Table.read(config.load().dataset("titanic"))
    return table.validation_rows(prepared), served_spec.preprocessing(table, prepared, scaler(prepared, 0))


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows.assign(Age=np.nan), "column Age: no value in rows 0, 1, 2, 3, 4, ...; this model was trained"),
    (lambda rows: rows.assign(Fare=""), "column Fare: no value in rows 0, 1, 2, 3, 4, ..."),
    (lambda rows: rows.assign(Age="twenty-two"), "column Age: 'twenty-two' is not a number"),
    (lambda rows: rows.assign(Sex="M"), "column Sex: 'M' is not a known category (male, female; rows 0, 1,"),
    (lambda rows: rows.drop(columns="Pclass"), "column Pclass: missing (the model takes Pclass, Sex, Age, Fare)"),
])
def test_a_row_the_network_never_saw_the_like_of_is_refused_naming_its_column(titanic, change, message):
    rows, spec = titanic
    with pytest.raises(MlflowException) as caught:
        served_model.features(change(rows), spec)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"  # HTTP 400 when served
    assert message in caught.value.message


def test_categories_listed_in_params_match_whatever_their_case(titanic):
    rows, spec = titanic
    shouted = rows.assign(Sex=rows["Sex"].str.upper().radd(" "))
    np.testing.assert_array_equal(served_model.features(shouted, spec), served_model.features(rows, spec))


def test_outputs_become_probabilities_by_the_last_layer_s_rule():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    softmax = served_model.probabilities(logits, "softmax")
    np.testing.assert_allclose(softmax[1], [1 / 3] * 3)
    np.testing.assert_allclose(softmax[0], np.exp([2, 0, -1]) / np.exp([2, 0, -1]).sum())
    np.testing.assert_allclose(served_model.probabilities(np.log(softmax), "exp"), softmax)
    # One output: the second class's probability; the first's is what is left.
    np.testing.assert_allclose(served_model.probabilities(np.array([[0.0], [np.log(3)]]), "sigmoid"),
                               [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(served_model.probabilities(np.array([[0.8]]), "as_is"), [[0.2, 0.8]])
    # Scores regressing one-hot targets: clipped to [0, 1], normalised; a dead row is uniform.
    np.testing.assert_allclose(served_model.probabilities(np.array([[1.2, 0.5, -0.3], [0.0, 0.0, -1.0]]), "clipped"),
                               [[1 / 1.5, 0.5 / 1.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def test_labels_follow_the_study_s_rule_and_answers_name_their_columns():
    spec2 = {"rule": "sigmoid", "threshold": 0.0, "classes": ["died", "survived"], "label": "survived"}
    answer = served_model.answer(np.array([[-0.5], [0.0], [1.0]]), spec2)
    assert list(answer.columns) == ["p_survived", "survived"] and answer["survived"].tolist() == [0, 1, 1]
    spec3 = {"rule": "softmax", "threshold": 0.0, "classes": ["Adelie", "Chinstrap", "Gentoo"], "label": "species"}
    answer = served_model.answer(np.array([[0.0, 3.0, 1.0]]), spec3)
    assert list(answer.columns) == ["p_Adelie", "p_Chinstrap", "p_Gentoo", "species"]
    assert answer["species"].tolist() == ["Chinstrap"]


def test_expected_calibration_error_on_made_up_answers_with_a_known_value():
    # 10 rows all at confidence 0.8 of which 5 right: one bin, |0.5 - 0.8| = 0.3.
    p = np.tile([0.2, 0.8], (10, 1))
    y = np.array([1] * 5 + [0] * 5)
    assert evaluation.expected_calibration_error(p, y) == pytest.approx(0.3)
    # Two bins, half the rows each: at 0.95 all right (gap 0.05), at 0.55 3/4 right (gap 0.2): 0.125.
    p = np.array([[0.05, 0.95]] * 4 + [[0.45, 0.55]] * 4)
    y = np.array([1, 1, 1, 1, 1, 1, 1, 0])
    assert evaluation.expected_calibration_error(p, y) == pytest.approx((4 * 0.05 + 4 * 0.2) / 8)
    # Calibrated by construction: in the limit the error goes to 0.
    rng = np.random.default_rng(0)
    q = rng.uniform(0.5, 1.0, 200_000)
    y = (rng.uniform(size=q.size) < q).astype(int)
    assert evaluation.expected_calibration_error(np.stack([1 - q, q], axis=1), y) < 0.01


def test_the_evaluation_s_metrics_on_made_up_answers():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    scores = evaluation.metrics(p, p.argmax(axis=1), y)
    assert scores["accuracy"] == 0.75 and scores["roc_auc"] == 1.0  # every positive ranked above the negative
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    scores = evaluation.metrics(three, three.argmax(axis=1), np.array([0, 1, 2]))
    assert scores["accuracy"] == 1.0 and scores["roc_auc"] == 1.0
    assert evaluation.reliability_png(three, np.array([0, 1, 2]), "made up")[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.isna(evaluation.metrics(p[:2], np.array([0, 0]), np.array([0, 0]))["roc_auc"])
