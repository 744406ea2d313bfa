"""A variant's two figures on one dataset: its loss and accuracy curves (the replicas' mean and
spread, its canonical run beside them) and its confusion matrix (the canonical run's), drawn by
train@<dataset> as it trains it, so that an edit re-draws only what it re-trains. matplotlib is
imported only then (about 0.5 s).
"""
from __future__ import annotations

from ..core.catalog import VariantFiles
from ..core.figures import png, pyplot
from .diagnosis import describe
from ..core.record import TrainingRecord


def loss_figure(record: TrainingRecord):
    plt = pyplot()

    history = record.history
    epochs = [h.epoch for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    # The replicas' mean first, the canonical run thin beside it: a stalled canonical run's flat 0
    # must not read as the study's loss while nearly every replica runs off below zero.
    for key, label, colour in (("train_loss", "train", "tab:blue"), ("val_loss", "validation", "tab:orange")):
        spread = record.curves[key]
        left.plot(epochs, spread.mean, color=colour, lw=1.6, label=f"{label}, mean of replicas")
        left.fill_between(epochs, spread.min, spread.max, color=colour, alpha=0.12)
    left.plot(epochs, [h.train_loss for h in history], color="tab:blue", ls="--", lw=0.9, label="train, canonical run")
    left.plot(epochs, [h.val_loss for h in history], color="tab:orange", ls="--", lw=0.9,
              label="validation, canonical run")
    left.set(xlabel="epoch", ylabel="loss", title=f"{record.config.loss} loss (band: replicas' min to max)")
    left.axhline(0, color="grey", lw=0.6)
    left.legend(fontsize=7)
    spread = record.curves["val_accuracy"]
    right.plot(epochs, spread.mean, color="black", lw=1.6, label=f"mean of {record.study.replicas} replicas")
    right.fill_between(epochs, spread.min, spread.max, color="grey", alpha=0.2, label="their min to max")
    right.plot(epochs, [h.val_accuracy for h in history], color="tab:green", ls="--", lw=0.9, label="canonical run")
    right.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1), title="accuracy")
    right.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{record.dataset}: {record.variant} (last activation {record.head.last_activation}): canonical run "
                 f"{record.diagnosis.status}; replicas {describe(record.diagnoses)}", fontsize=10)
    fig.tight_layout()
    return fig


def confusion_figure(record: TrainingRecord):
    plt = pyplot()

    matrix = record.confusion_matrix
    classes = range(len(matrix))
    side = 3.4 if len(matrix) <= 3 else 5.2
    fig, ax = plt.subplots(figsize=(side + 0.4, side))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for actual in classes:
        for predicted in classes:
            value = matrix[actual][predicted]
            ax.text(predicted, actual, str(value), ha="center", va="center",
                    color="white" if value > peak / 2 else "black", fontsize=13 if len(matrix) <= 3 else 8)
    ax.set(xticks=list(classes), yticks=list(classes), xlabel="predicted", ylabel="actual",
           title=f"{record.dataset}: {record.variant} (validation)")
    ax.set_xticklabels(record.classes, rotation=30 if len(matrix) > 3 else 0, fontsize=8)
    ax.set_yticklabels(record.classes, fontsize=8)
    fig.tight_layout()
    return fig


def draw(record: TrainingRecord) -> dict[str, bytes]:
    """Its two figures as PNG bytes, by file name (VariantFiles.loss_curve, .confusion_matrix)."""
    files = VariantFiles(record.variant, record.dataset)
    return {path.name: png(figure(record), 90)
            for path, figure in ((files.loss_curve, loss_figure), (files.confusion_matrix, confusion_figure))}
