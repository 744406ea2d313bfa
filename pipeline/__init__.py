"""Loss-function study on Titanic and an alpha sweep on Iris, as DVC stages tracked in MLflow."""
# First, before numpy or torch can load: the same arithmetic on every CPU (numerics.py).
from . import numerics

numerics.pin()
