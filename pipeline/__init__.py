"""Loss-function study on Titanic and an alpha sweep on Iris, as DVC stages tracked in MLflow."""
