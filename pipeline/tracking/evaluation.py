"""A served model evaluated on its canonical split's validation rows, as MLflow logs it beside
the model: accuracy, log loss, ROC AUC (one-vs-rest, macro, on more than two classes), expected
calibration error, the confusion matrix and a reliability diagram.

By hand rather than `mlflow.models.evaluate`: its classifier evaluator takes a model that
answers labels (and a `predict_proba` for the probability metrics), while the served model
answers a table of probabilities and a label. The metrics are scikit-learn's; scikit-learn has
no expected calibration error, which is the study's (study/scores.py, Guo et al. 2017): the top
class's confidence in equal-width bins, the bins' gaps between accuracy and confidence weighted
by their share of the rows.
"""
from __future__ import annotations

import numpy as np

from ..core.figures import png, pyplot
from ..study.scores import BINS, calibration_error
# The run's metrics are validation.<name>: after study.*, train/ and val/ in name order, so the
# compare view's first rows (about 17 drawn, sorted by name) stay the study's summary.
METRIC_PREFIX = "validation."


def calibration_bins(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width bin of the top class's probability: rows, mean confidence, accuracy."""
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    # A confidence of exactly 1 belongs to the last bin; the bins are (lo, hi], the first [0, hi].
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return [{"low": b / bins, "high": (b + 1) / bins, "rows": int((index == b).sum()),
             "confidence": float(confidence[index == b].mean()) if (index == b).any() else None,
             "accuracy": float((predicted == y)[index == b].mean()) if (index == b).any() else None}
            for b in range(bins)]


def expected_calibration_error(p: np.ndarray, y: np.ndarray) -> float:
    return float(calibration_error(p, y))


def metrics(p: np.ndarray, predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """p: (rows, classes) probabilities; predicted: the served label's class index; y: the truth."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    classes = list(range(p.shape[1]))
    if len(set(y)) < 2:
        auc = float("nan")  # one class among these rows: no ranking to score
    elif len(classes) == 2:
        auc = roc_auc_score(y, p[:, 1])
    else:
        auc = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=classes)
    return {"accuracy": float(accuracy_score(y, predicted)), "log_loss": float(log_loss(y, p, labels=classes)),
            "roc_auc": float(auc), "expected_calibration_error": expected_calibration_error(p, y)}


def confusion(predicted: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    """Rows: the actual class; columns: the predicted one (scikit-learn's layout)."""
    from sklearn.metrics import confusion_matrix

    return {"classes": classes,
            "matrix": confusion_matrix(y, predicted, labels=list(range(len(classes)))).tolist()}


def reliability_png(p: np.ndarray, y: np.ndarray, title: str) -> bytes:
    """The reliability diagram: accuracy against confidence per bin, the diagonal a calibrated
    model would follow, and how many rows each bin holds."""
    plt = pyplot()

    found = [b for b in calibration_bins(p, y) if b["rows"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.6, 5.6), sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="calibrated")
    top.bar([(b["low"] + b["high"]) / 2 for b in found], [b["accuracy"] for b in found], width=1 / BINS,
            edgecolor="#1f4e79", color="#9ecae1", label="accuracy in the bin")
    top.plot([b["confidence"] for b in found], [b["accuracy"] for b in found], "o", color="#1f4e79",
             label="(mean confidence, accuracy)")
    top.set(ylabel="accuracy", ylim=(0, 1), xlim=(0, 1),
            title=f"{title}\nexpected calibration error {expected_calibration_error(p, y):.3f}")
    top.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)  # outside: bars fill the square
    bottom.bar([(b["low"] + b["high"]) / 2 for b in found], [b["rows"] for b in found], width=1 / BINS,
               color="#bbbbbb", edgecolor="#666666")
    bottom.set(xlabel="confidence of the predicted class", ylabel="rows")
    fig.tight_layout()
    return png(fig, 100)
