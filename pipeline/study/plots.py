"""Stage plot@<dataset>: a loss-curve and a confusion-matrix PNG per variant (its canonical run,
with the replicas' mean and spread beside it), in the folder catalog.VariantFiles names.

One process draws them all, so matplotlib's import (about 0.5 s) is paid once, not per variant.
"""
from __future__ import annotations

from .. import atomic, config
from ..catalog import VariantFiles, figures
from .diagnosis import describe
from .record import TrainingRecord, dataset_records


def loss_figure(record: TrainingRecord):
    import matplotlib.pyplot as plt

    history = record.history
    epochs = [h.epoch for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(epochs, [h.train_loss for h in history], marker="o", ms=3, label="train")
    left.plot(epochs, [h.val_loss for h in history], marker="o", ms=3, label="validation")
    left.set(xlabel="epoch", ylabel="loss", title=f"{record.config.loss} loss")
    left.axhline(0, color="grey", lw=0.6)
    left.legend()
    right.plot(epochs, [h.val_accuracy for h in history], marker="o", ms=3, color="tab:green",
               label="canonical run")
    spread = record.curves["val_accuracy"]
    right.plot(epochs, spread.mean, color="black", lw=1.2, label=f"mean of {record.study.replicas} replicas")
    right.fill_between(epochs, spread.min, spread.max, color="grey", alpha=0.2, label="their min to max")
    right.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1), title="accuracy")
    right.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{record.dataset}: {record.variant} (last activation {record.head.last_activation}): canonical run "
                 f"{record.diagnosis.status}; replicas {describe(record.diagnoses)}", fontsize=10)
    fig.tight_layout()
    return fig


def confusion_figure(record: TrainingRecord):
    import matplotlib.pyplot as plt

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


def main(dataset: str, params_path: str = config.PARAMS_FILE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = dataset_records(config.load(params_path), dataset)
    folder = figures(dataset)
    with atomic.directory(folder) as tmp:
        for record in records:
            files = VariantFiles(record.variant, dataset)
            for path, draw in ((files.loss_curve, loss_figure), (files.confusion_matrix, confusion_figure)):
                target = tmp / path.relative_to(folder)
                target.parent.mkdir(exist_ok=True)
                fig = draw(record)
                fig.savefig(target, dpi=90)
                plt.close(fig)
    print(f"plot@{dataset}: {2 * len(records)} figures in {folder}")
