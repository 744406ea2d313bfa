"""The secondary scores of each replica's probabilities (study/scores.py): the served model's
probabilities, scikit-learn's log-loss and Brier score, Guo et al.'s calibration error, one value
per replica; and the report's table of them."""
import numpy as np
import pytest

import pipeline  # noqa: F401  (pins the numerics before numpy computes)
from pipeline.core.record import SCORES
from pipeline.study import scores
from pipeline.tracking import served_model

RULES = ("sigmoid", "softmax", "exp", "as_is", "clipped")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("outputs", [1, 3])
def test_the_study_s_probabilities_are_the_served_model_s(rule, outputs):
    """served_model.py carries its own copy (it travels with every logged model): the two agree."""
    rng = np.random.default_rng(outputs)
    raw = rng.normal(0, 2, (50, outputs))
    if rule == "exp":
        raw = np.log(served_model.probabilities(raw, "softmax")) if outputs > 1 else -np.abs(raw)
    if rule == "as_is":
        raw = rng.uniform(0, 1, (50, outputs))
    np.testing.assert_array_equal(scores.probabilities(raw, rule), served_model.probabilities(raw, rule))
    stacked = np.stack([raw, raw[::-1]])  # a leading replica axis changes nothing of each replica's
    np.testing.assert_array_equal(scores.probabilities(stacked, rule)[1], served_model.probabilities(raw[::-1], rule))


@pytest.mark.parametrize("loss, last, rule", [
    ("CrossEntropyLoss", "none", "softmax"), ("NLLLoss", "LogSoftmax", "softmax"), ("NLLLoss", "ReLU", "softmax"),
    ("BCEWithLogitsLoss", "none", "sigmoid"), ("MSELoss", "Sigmoid", "as_is"), ("MSELoss", "Softmax", "as_is"),
    ("L1Loss", "LogSoftmax", "exp"), ("L1Loss", "ReLU", "clipped"), ("MSELoss", "none", "clipped")])
def test_outputs_are_read_as_the_loss_reads_them(loss, last, rule):
    assert scores.probability_rule(loss, last) == rule


def test_log_loss_and_brier_are_scikit_learn_s_per_replica():
    from sklearn.metrics import brier_score_loss, log_loss

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=(4, 60))
    labels = rng.integers(0, 3, (4, 60))
    found = scores.scores(p, labels)
    assert tuple(found) == SCORES
    for r in range(4):
        assert found["log_loss"][r] == pytest.approx(log_loss(labels[r], p[r], labels=[0, 1, 2]), rel=1e-12)
        onehot = np.eye(3)[labels[r]]
        assert found["brier"][r] == pytest.approx(((p[r] - onehot) ** 2).sum(axis=1).mean(), rel=1e-12)
    # On two classes the Brier score over both classes is twice scikit-learn's of the positive one.
    two = rng.dirichlet(np.ones(2), size=80)
    y = rng.integers(0, 2, 80)
    assert scores.brier(two, y) == pytest.approx(2 * brier_score_loss(y, two[:, 1]), rel=1e-12)


def test_a_zero_probability_of_the_truth_costs_minus_log_eps_not_infinity():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert scores.log_loss(p, np.array([1, 1])) == pytest.approx((-np.log(scores.EPS) - np.log(0.5)) / 2)


def test_the_calibration_error_with_a_known_value_per_replica():
    # Replica 0: 10 rows at confidence 0.8, 5 right: |0.5 - 0.8| = 0.3. Replica 1: all right at 1.0: 0.
    p = np.stack([np.tile([0.2, 0.8], (10, 1)), np.tile([0.0, 1.0], (10, 1))])
    labels = np.array([[1] * 5 + [0] * 5, [1] * 10])
    np.testing.assert_allclose(scores.calibration_error(p, labels), [0.3, 0.0], atol=1e-12)


def test_the_calibration_error_over_several_bins_and_replicas_with_known_values():
    """Replica 0: four rows at 0.95 all right (gap 0.05) and four at 0.55, three right (gap 0.2):
    (4 * 0.05 + 4 * 0.2) / 8. Replica 1: a confidence of exactly 0.6 sits in the bin (0.5, 0.6],
    with 0.55: two rows, one right, mean confidence 0.575, gap 0.075; and 1.0 in the last bin, right."""
    p = np.array([[[0.05, 0.95]] * 4 + [[0.45, 0.55]] * 4,
                  [[0.4, 0.6], [0.45, 0.55], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]])
    labels = np.array([[1, 1, 1, 1, 1, 1, 1, 0], [1, 0, 1, 1, 1, 1, 1, 1]])
    np.testing.assert_allclose(scores.calibration_error(p, labels), [(4 * 0.05 + 4 * 0.2) / 8, 2 * 0.075 / 8],
                               atol=1e-12)
