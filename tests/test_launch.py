"""`mlflow run .`: the MLproject's defaults, and real launches in a temporary repository."""
import pytest
import yaml

from pipeline.core import config
from pipeline.tracking import launch

from .conftest import ROOT, sh, store_runs


def test_mlproject_defaults_are_params_yaml():
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    params = config.load(ROOT / "params.yaml")
    train = {k: v["default"] for k, v in project["entry_points"]["train"]["parameters"].items()}
    variant = params.variant(train.pop("variant"))
    assert train.pop("seed") == params.seed
    assert train == {key: getattr(variant.training, key) for key in train}
    sweep = {k: v["default"] for k, v in project["entry_points"]["sweep"]["parameters"].items()}
    assert sweep.pop("seed") == params.seed
    assert sweep == {key: getattr(params.iris, key) for key in sweep}
    assert set(sweep) == set(launch.SWEEP_KEYS) and set(train) == set(launch.TRAIN_KEYS)
    # main's one parameter leaves params.yaml's tuning.enabled as it is unless given.
    main = project["entry_points"]["main"]["parameters"]
    assert main["tuning"]["default"] == "params"
    assert launch.overrides(launch.parser().parse_args(["main", "--tuning", "params"]), params) == []
    env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.lock"]


def test_only_values_that_differ_become_overrides():
    params = config.load(ROOT / "params.yaml")
    args = launch.parser().parse_args(["train", "--variant", "mse", "--epochs", "20", "--lr", "0.01", "--seed", "42"])
    assert launch.overrides(args, params) == ["variants.mse.lr=0.01"]
    assert launch.values(["variants.mse.lr=0.01", "seed=7", "iris.model=ridge"]) == {
        "variants.mse.lr": 0.01, "seed": 7, "iris.model": "ridge"}
    assert launch.command("train", None) == ["dvc", "repro", "publish"]
    assert launch.command("sweep", "alpha_count-5") == ["dvc", "exp", "run", "--name", "alpha_count-5", "sweep_alpha"]
    # Named for what they launch, never twice the same DVC experiment name.
    assert launch.label(args, launch.values(launch.overrides(args, params))) == "train mse: lr=0.01"
    assert launch.experiment_name("train mse: lr=0.01", set()) == "train-mse-lr-0.01"
    assert launch.experiment_name("train mse: lr=0.01", {"train-mse-lr-0.01", "train-mse-lr-0.01-2"}) == \
        "train-mse-lr-0.01-3"
    assert launch.label(launch.parser().parse_args(["main"]), {}) == "main"
    args = launch.parser().parse_args(["sweep", "--alpha-count", "5", "--model", "ridge"])
    assert launch.overrides(args, params) == ["iris.alpha_count=5", "iris.model=ridge"]
    # The tuned study's switch (main's): an override only when it differs.
    assert launch.overrides(launch.parser().parse_args(["main", "--tuning", "true"]), params) == []
    assert launch.overrides(launch.parser().parse_args(["main", "--tuning", "false"]), params) == [
        "tuning.enabled=false"]
    assert launch.values(["tuning.enabled=false"]) == {"tuning.enabled": False}
    assert launch.experiment_name(launch.label(launch.parser().parse_args(["main", "--tuning", "false"]),
                                               {"tuning.enabled": False}), set()) == "main-tuning.enabled-false"


def test_a_bad_override_is_refused_before_a_byte_is_written(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(config.PipelineError, match="variants.mse.epochs: must be >= 1"):
        config.set_values(path, {"variants.mse.epochs": 0})
    with pytest.raises(config.PipelineError, match="variants.nothing.lr: nothing is not a section"):
        config.set_values(path, {"variants.nothing.lr": 0.1})
    assert path.read_text() == (ROOT / "params.yaml").read_text()


def test_an_override_changes_that_value_and_nothing_else_in_params_yaml(tmp_path):
    """Comments, flow lists, quoting, long lines and order stay: the diff is the value alone
    (`dvc exp run --set-param` rewrote about 80 lines of the file to change one)."""
    import difflib

    path = tmp_path / "params.yaml"
    before = (ROOT / "params.yaml").read_text()
    path.write_text(before)
    config.set_values(path, {"variants.mse.epochs": 5, "seed": 7})
    after = path.read_text()
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    seed_line = next(line for line in before.splitlines() if line.startswith("seed:"))
    mse_line = next(line for line in before.splitlines() if line.startswith("  mse: {"))
    assert changed == [f"-{seed_line}", f"+{seed_line.replace('42', '7')}", f"-{mse_line}",
                       f"+{mse_line[:-1]}, epochs: 5}}"], changed
    assert config.load(path).variant("mse").training.epochs == 5 and config.load(path).seed == 7


@pytest.mark.slow
def test_mlflow_run_nests_runs_and_keeps_params_lock_and_mlflow_in_step(repo):
    first = sh(repo, "mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "titanic-loss-functions")
    assert "publish: 6 run(s) logged" in first
    runs = store_runs(repo)
    launch_run = next(r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "main")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == launch_run.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]

    # An override sets its value alone in params.yaml, then `dvc exp run`: params.yaml, dvc.lock
    # and MLflow agree, and the file differs from before by that one line.
    before = (repo / "params.yaml").read_text().splitlines()
    sh(repo, "mlflow", "run", ".", "--env-manager", "local", "-e", "train", "-P", "variant=mse", "-P", "epochs=3",
       "--experiment-name", "titanic-loss-functions")
    after = (repo / "params.yaml").read_text().splitlines()
    assert [line for line in after if line not in before] == ["    epochs: 3"] and set(before) <= set(after)
    assert yaml.safe_load((repo / "params.yaml").read_text())["variants"]["mse"]["epochs"] == 3
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert lock["stages"]["train@titanic"]["params"]["params.yaml"]["variants"]["mse"]["epochs"] == 3
    runs = store_runs(repo)
    second = next(r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "train")
    mse = [r for r in runs if r.data.tags.get("variant") == "mse" and r.data.params["epochs"] == "3"]
    assert len(mse) == 1 and mse[0].data.tags["mlflow.parentRunId"] == second.info.run_id
    assert mse[0].data.tags["dvc.exp_name"] == "train-mse-epochs-3"  # named for what it is, not at random
    assert "train-mse-epochs-3" in sh(repo, "dvc", "exp", "list")
    assert mse[0].info.run_name == "mse (train-mse-epochs-3)"  # whose it is, at a glance
    assert (launch_run.info.run_name, second.info.run_name) == ("mlflow run main", "mlflow run train mse: epochs=3")

    # Nothing changed: no new run, and the launch still says which runs it stands for.
    count = len(runs)
    sh(repo, "mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "titanic-loss-functions")
    runs = store_runs(repo)
    assert len(runs) == count + 1
    third = max((r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "main"),
                key=lambda r: r.info.start_time)
    assert third.data.tags["pipeline.run.titanic/mse"] == mse[0].info.run_id
    assert third.data.tags["pipeline.run.sweep"]

    # The tuned study's switch: one line of params.yaml, then `dvc exp run`; its runs say whose they are.
    before = (repo / "params.yaml").read_text().splitlines()
    out = sh(repo, "mlflow", "run", ".", "--env-manager", "local", "-P", "tuning=true",
             "--experiment-name", "titanic-loss-functions")
    after = (repo / "params.yaml").read_text().splitlines()
    assert [line for line in after if line not in before] == ["  enabled: true"]
    assert "tuned study:" in out
    tuned = [r for r in store_runs(repo) if r.data.tags.get("study") == "tuned"]
    assert sorted(r.data.tags["tuned_variant"] for r in tuned) == ["mse", "nll_logsoftmax", "nll_relu"]
    assert all(r.info.run_name == f"{r.data.tags['tuned_variant']} (tuned lr) ({r.data.tags['dvc.exp_name']})"
               for r in tuned)
    fourth = max((r for r in store_runs(repo) if r.data.tags.get("mlflow.project.entryPoint") == "main"),
                 key=lambda r: r.info.start_time)
    assert fourth.data.tags["pipeline.run.titanic/tuned/mse"] in {r.info.run_id for r in tuned}
