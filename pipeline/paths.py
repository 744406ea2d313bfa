"""Where each stage reads and writes, relative to the project root (dvc.yaml says the same).

Kept apart from the stage modules so a stage can name another's files without importing
its libraries (the plot stage must not pay for torch).
"""
from pathlib import Path

# The notebook's file as shipped with the project (used when its address cannot be reached),
# and what it is a copy of.
TITANIC_SHIPPED = Path("data/shipped/titanic.csv")
TITANIC_SHIPPED_SOURCE = Path("data/shipped/titanic.json")

TITANIC_RAW = Path("data/titanic/raw.csv")
TITANIC_SOURCE = Path("data/titanic/source.json")
TITANIC_PREPARED = Path("data/titanic/prepared.npz")
TITANIC_META = Path("data/titanic/prepared.json")

RESULTS = Path("results/titanic")          # one folder per variant: model.pt, record.json, replicas.csv
METRICS = Path("metrics/titanic")          # <variant>.json for `dvc metrics show`
HISTORY = Path("plots/titanic/history")    # <variant>.csv, per-epoch, for `dvc plots show`
FIGURES = Path("plots/titanic/figures")    # <variant>_loss.png, <variant>_confusion.png
# When each stage ran, for MLflow: not a DVC output, so wall-clock times never change what DVC hashes.
RUN_TIMES = Path("logs/run-times")         # <variant>.json, sweep.json

IRIS_RAW = Path("data/iris/raw.csv")
IRIS_SOURCE = Path("data/iris/source.json")
IRIS_PREPARED = Path("data/iris/prepared.npz")
IRIS_META = Path("data/iris/prepared.json")

SWEEP_RECORD = Path("results/iris/sweep.json")       # per-alpha results, for publishing
SWEEP_METRICS = Path("metrics/iris/sweep.json")      # summary for `dvc metrics show`
SWEEP_TABLE = Path("plots/iris/alpha_sweep.csv")     # per-alpha table, a DVC plot
SWEEP_GIF = Path("plots/iris/alpha_sweep.gif")       # the decision boundary, frame by frame
SWEEP_SUMMARY = Path("plots/iris/alpha_summary.png")  # accuracies and weight norm against alpha

REPORT = Path("reports/titanic")  # comparison.md, comparison.csv, contrast_<name>.png, compare.png, summary.json
