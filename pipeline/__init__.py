"""A loss-function study over tabular datasets and an alpha sweep on Iris, as DVC stages tracked in MLflow.

Layers, each importing only those before it (tests/test_layers.py holds the order):
core (params, the catalog of files and their typed contents, the vocabulary, pinned numerics),
data (tables, splits), study (losses, model, batched training) and iris (the sweep), statistics,
reports, tracking (MLflow), and the command line (__main__, back, plots_template).
"""
# First, before numpy or torch can load: the same arithmetic on every CPU (core/numerics.py).
from . import core  # noqa: F401  (isort: skip)
