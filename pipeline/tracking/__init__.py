"""MLflow: where runs go, what each kind of run holds, publishing them; `mlflow run .`."""
