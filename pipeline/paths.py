"""Where each stage reads and writes, relative to the project root (dvc.yaml says the same).

Kept apart from the stage modules so a stage can name another's files without importing
its libraries (the plot stage must not pay for torch).
"""
from pathlib import Path

TITANIC_RAW = Path("data/titanic/raw.csv")
TITANIC_SOURCE = Path("data/titanic/source.json")
TITANIC_PREPARED = Path("data/titanic/prepared.npz")
TITANIC_META = Path("data/titanic/prepared.json")

RESULTS = Path("results/titanic")          # one folder per variant: model.pt, record.json
METRICS = Path("metrics/titanic")          # <variant>.json for `dvc metrics show`
HISTORY = Path("plots/titanic/history")    # <variant>.csv, per-epoch, for `dvc plots show`
FIGURES = Path("plots/titanic/figures")    # <variant>_loss.png, <variant>_confusion.png
