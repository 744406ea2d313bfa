"""The real `dvc repro` on a small copy of the project in a temporary git repository."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from pipeline import tracking

from .conftest import ROOT, copy_pipeline, small_params, titanic_csv

pytestmark = pytest.mark.slow


def sh(repo: Path, *command: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DVC_ROOT", None)
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def store_runs(repo: Path, experiment: str = tracking.EXPERIMENT):
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id])


@pytest.fixture
def repo(tmp_path, serve):
    body = titanic_csv(rows=200)
    url = serve({"/titanic.csv": body}) + "/titanic.csv"
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_pipeline(repo)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore", "MLproject", "python_env.yaml", "requirements.txt"):
        shutil.copy(ROOT / name, repo / name)
    params = small_params(**{"titanic.url": url, "titanic.sha256": hashlib.sha256(body).hexdigest(),
                             "iris.alpha_count": 4, "iris.max_iter": 200})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-qm", "init")
    return repo


def set_epochs(repo: Path, variant: str, epochs: int) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["variants"][variant]["epochs"] = epochs
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_tracks_every_variant_once_and_reruns_nothing(repo):
    first = sh(repo, "dvc", "repro")
    assert "publish: 5 run(s) logged" in first  # three variants, the report and the alpha sweep
    runs = store_runs(repo)
    assert sorted(run.info.run_name for run in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.params["data.source"] == "url" for run in runs if run.info.run_name != "comparison-report")
    for plot in ("figures/mse_loss.png", "figures/mse_confusion.png", "history/mse.csv"):
        assert (repo / "plots/titanic" / plot).exists()

    second = sh(repo, "dvc", "repro")
    assert "Running stage" not in second
    assert len(store_runs(repo)) == 4

    # One variant's settings changed: that variant alone retrains; it and the new report are logged.
    set_epochs(repo, "mse", 3)
    third = sh(repo, "dvc", "repro")
    assert [line for line in third.splitlines() if line.startswith("Running stage 'train@")] == [
        "Running stage 'train@mse':"]
    assert "publish: 2 run(s) logged, 3 already in MLflow" in third
    assert len(store_runs(repo)) == 6


def test_a_run_cache_restore_still_ends_in_mlflow(repo):
    sh(repo, "dvc", "repro")
    original = (repo / "params.yaml").read_text()
    set_epochs(repo, "mse", 3)
    sh(repo, "dvc", "repro")
    # The store is lost, then the old settings come back: DVC restores train@mse from its
    # run-cache without running it, and publishing still logs every run the store lacks.
    shutil.rmtree(repo / "mlartifacts")
    (repo / "mlflow.db").unlink()
    (repo / "params.yaml").write_text(original)
    out = sh(repo, "dvc", "repro")
    assert "Stage 'train@mse' is cached - skipping run" in out
    assert "publish: 5 run(s) logged" in out
    runs = store_runs(repo)
    assert sorted(run.info.run_name for run in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    mse = next(run for run in runs if run.info.run_name == "mse")
    assert mse.data.params["epochs"] == "2"


def test_single_stage_by_name(repo):
    out = sh(repo, "dvc", "repro", "train@nll_relu")
    assert "Running stage 'train@nll_relu'" in out and "train@mse" not in out
    assert "NLLLoss expects log-probabilities" in out
