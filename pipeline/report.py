"""Stage report: the study's conclusion, side by side.

A table of every variant (Markdown and CSV), a figure per contrast pair (NLL on ReLU against
NLL on LogSoftmax, the same for KLDiv), one figure of the regression losses and regularized
variants, and summary.json naming the champion. Publishing turns it into a summary run and
registers the champion's model.
"""
from __future__ import annotations

import csv
import io

from . import atomic, config
from .paths import REPORT
from .records import read_record

COLUMNS = ("variant", "loss", "last_activation", "final_train_loss", "final_val_loss", "best_val_accuracy",
           "final_val_accuracy", "best_epoch", "diagnosis")


def table(records: list[dict]) -> list[dict]:
    return [{"variant": r["variant"], "loss": r["config"]["loss"], "last_activation": r["config"]["last_activation"],
             **{k: r["summary"][k] for k in ("final_train_loss", "final_val_loss", "best_val_accuracy",
                                             "final_val_accuracy", "best_epoch")},
             "diagnosis": r["diagnosis"]["status"]} for r in records]


def champion(rows: list[dict]) -> dict:
    """Best final validation accuracy: the weights kept are the last epoch's. Ties go to params order."""
    return max(rows, key=lambda row: row["final_val_accuracy"])


def markdown(rows: list[dict], best: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
        if row is best:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(["# Titanic loss study", "", *lines, "",
                      f"Champion (best final validation accuracy): **{best['variant']}**, "
                      f"{best['final_val_accuracy']:.4f}.", ""])


def curves_figure(records: list[dict], title: str):
    """Loss (top) and validation accuracy (bottom), one column per variant."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(records), figsize=(4.2 * len(records), 6.4), squeeze=False)
    for column, record in enumerate(records):
        epochs = [h["epoch"] for h in record["history"]]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(epochs, [h["train_loss"] for h in record["history"]], label="train")
        top.plot(epochs, [h["val_loss"] for h in record["history"]], label="validation")
        top.axhline(0, color="grey", lw=0.6)
        top.set(title=f"{record['variant']}\n{record['config']['loss']} on {record['config']['last_activation']}",
                xlabel="epoch", ylabel="loss")
        top.legend(fontsize=8)
        bottom.plot(epochs, [h["val_accuracy"] for h in record["history"]], color="tab:green")
        bottom.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
                   title=f"diagnosis: {record['diagnosis']['status']}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def overlay_figure(records: list[dict]):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for record in records:
        epochs = [h["epoch"] for h in record["history"]]
        left.plot(epochs, [h["val_accuracy"] for h in record["history"]], label=record["variant"])
        right.plot(epochs, [h["train_loss"] for h in record["history"]], label=record["variant"])
    left.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    right.set(xlabel="epoch", ylabel="training loss (each its own loss)", title="training loss")
    right.legend(fontsize=8)
    fig.suptitle("Regression losses and regularized variants")
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def main(params_path: str = config.PARAMS_FILE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    params = config.load(params_path)
    records = [read_record(name) for name in params.variants]
    rows = table(records)
    best = champion(rows)
    pairs: dict[str, list[dict]] = {}
    for record in records:
        if record["config"].get("contrast"):
            pairs.setdefault(record["config"]["contrast"], []).append(record)
    with atomic.directory(REPORT) as tmp:
        (tmp / "comparison.md").write_text(markdown(rows, best))
        with open(tmp / "comparison.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        for name, group in pairs.items():
            (tmp / f"contrast_{name}.png").write_bytes(png(curves_figure(group, f"Contrast: {name}")))
        by_name = {r["variant"]: r for r in records}
        if params.report_compare:
            (tmp / "compare.png").write_bytes(png(overlay_figure([by_name[n] for n in params.report_compare])))
        atomic.write_json(tmp / "summary.json", {
            "champion": best["variant"], "champion_final_val_accuracy": best["final_val_accuracy"],
            "digests": {r["variant"]: r["digest"] for r in records}, "contrasts": sorted(pairs)})
    print(f"report: {len(rows)} variants; champion {best['variant']} ({best['final_val_accuracy']:.2%})")
