"""The team setup for real: PostgreSQL, `mlflow server` on 127.0.0.1 started by team/server.sh,
the pipeline logging there, parallel DVC experiments, the server stopped mid-publish, and eight
publishers of one study at the same moment. (Load on a busy machine: tests/test_load.py.)"""
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.tracking import study_view

from .conftest import ROOT, free_port, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

if not shutil.which("pg_lsclusters"):
    pytestmark.append(pytest.mark.skipif(not os.environ.get("CI"), reason="PostgreSQL is not installed"))


class TeamServer:
    def __init__(self, tmp: Path, **env):
        self.password = secrets.token_urlsafe(16)
        self.env = {**os.environ, "MLFLOW_DB_PASSWORD": self.password, "MLFLOW_TEAM_DIR": str(tmp / "team"),
                    "MLFLOW_TEAM_PORT": str(free_port()), "MLFLOW_DB_NAME": f"mlflow_test_{secrets.token_hex(4)}",
                    # A role of its own: servers of tests running side by side (pytest-xdist) never
                    # reset each other's password.
                    "MLFLOW_DB_USER": f"mlflow_test_{secrets.token_hex(4)}",
                    "MLFLOW_BIN": str(Path(sys.executable).parent / "mlflow"), **env}
        self.uri = f"http://127.0.0.1:{self.env['MLFLOW_TEAM_PORT']}"
        self.artifacts = tmp / "team" / "artifacts"

    def script(self, command: str) -> str:
        done = subprocess.run(["bash", str(ROOT / "team/server.sh"), command], env=self.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert self.password not in done.stdout + done.stderr
        return done.stdout

    def runs(self, experiment: str = "titanic-loss-functions"):
        client = MlflowClient(self.uri)
        found = client.get_experiment_by_name(experiment)
        return client.search_runs([found.experiment_id]) if found else []


def cluster_online() -> bool:
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    return any(line.split()[2] == "5432" and line.split()[3] == "online" for line in out.splitlines() if line.strip())


@pytest.fixture
def team(tmp_path):
    was_online = cluster_online()
    server = TeamServer(tmp_path)
    try:
        out = server.script("start")
        assert f"MLflow at {server.uri}" in out
        yield server
    finally:
        subprocess.run(["bash", str(ROOT / "team/server.sh"), "stop"], env=server.env, capture_output=True)
        for drop in (["dropdb", "--if-exists", server.env["MLFLOW_DB_NAME"]],
                     ["dropuser", "--if-exists", server.env["MLFLOW_DB_USER"]]):
            subprocess.run(["runuser", "-u", "postgres", "--", *drop], capture_output=True)
        # Stop what this test started, unless a test on another pytest-xdist worker may use it.
        if not was_online and not os.environ.get("PYTEST_XDIST_WORKER"):
            subprocess.run(["pg_ctlcluster", "15", "main", "stop"], capture_output=True)


def sh_env(repo: Path, env: dict, *command: str) -> str:
    full = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    done = subprocess.run(command, cwd=repo, env=full, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_whole_pipeline_logs_to_the_team_server(team, repo):
    out = sh_env(repo, {"MLFLOW_TRACKING_URI": team.uri}, "dvc", "repro")
    assert "publish: 6 run(s) logged" in out and team.password not in out
    runs = team.runs()
    assert sorted(r.info.run_name for r in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    sweep = team.runs("iris-alpha-sweep")
    assert len(sweep) == 1 + 4  # the parent and one child per alpha
    # Artifacts go through the server into its artifacts folder.
    mse = next(r for r in runs if r.info.run_name == "mse")
    assert mse.info.artifact_uri.startswith("mlflow-artifacts:")
    assert any(path.name == "loss_curve.png" for path in team.artifacts.rglob("*"))
    assert "loss_curve.png" in {a.path for a in MlflowClient(team.uri).list_artifacts(mse.info.run_id)}
    assert mse.outputs.model_outputs  # the model, a logged model of its own in MLflow 3
    # The password is nowhere in what was logged, nor in the server's log.
    for run in runs + sweep:
        assert all(team.password not in value for value in [*run.data.params.values(), *run.data.tags.values()])
    assert team.password not in (team.artifacts.parent / "mlflow-server.log").read_text()
    assert team.password not in (repo / "params.yaml").read_text()


def queue_two(repo: Path) -> None:
    # Two experiments on two workers run at the same moment: the concurrency under test (four ran
    # two such pairs one after the other, twice the time).
    for epochs in (3, 4):
        sh(repo, "dvc", "exp", "run", "--queue", "-q", "--set-param", f"+variants.mse.epochs={epochs}")


def count_experiment_runs(runs) -> Counter:
    """(role, experiment) of each run a DVC experiment logged; each is named after both."""
    logged = [(study_view.role(r), r.data.tags["dvc.exp_name"], r.info.run_name) for r in runs
              if "dvc.exp_name" in r.data.tags]
    assert all(name == f"{role} ({exp})" for role, exp, name in logged), logged
    return Counter((role, exp) for role, exp, _ in logged)


def test_two_queued_experiments_two_workers_against_the_server(team, reproduced):
    repo = reproduced  # the study as a first `dvc repro` leaves it, then published to the server
    sh_env(repo, {"MLFLOW_TRACKING_URI": team.uri}, "python", "-m", "pipeline", "publish")
    before = len(team.runs())
    queue_two(repo)
    sh_env(repo, {"MLFLOW_TRACKING_URI": team.uri}, "dvc", "exp", "run", "--run-all", "-j", "2")
    runs = team.runs()
    counted = count_experiment_runs(runs)
    names = {exp for _, exp in counted}
    assert len(names) == 2
    # Each experiment changed mse alone: its mse run and its report arrive, tagged with its name.
    assert counted == Counter({(run, exp): 1 for exp in names for run in ("mse", "comparison-report")})
    assert len(runs) == before + 4
    # The runs it shares with the others (unchanged variants) name it too.
    nll = next(r for r in runs if r.info.run_name == "nll_relu")
    assert {f"dvc.exp.{name}" for name in names} <= set(nll.data.tags)


def test_two_queued_experiments_two_workers_on_sqlite_lose_nothing(reproduced):
    repo = reproduced
    queue_two(repo)
    sh(repo, "dvc", "exp", "run", "--run-all", "-j", "2")
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("titanic-loss-functions").experiment_id])
    counted = count_experiment_runs(runs)
    assert len({exp for _, exp in counted}) == 2 and sum(counted.values()) == 4
    assert all(r.info.status == "FINISHED" for r in runs)


def test_server_stopped_mid_publish_then_back(team, reproduced):
    repo = reproduced  # every output in place; publishing to the server is what is tested
    # A shorter wait for the restart than the default 90 s: the bound is what is tested.
    patience = 20
    env = {**os.environ, "MLFLOW_TRACKING_URI": team.uri, "PYTHONPATH": str(repo),
           "PIPELINE_PUBLISH_RESTART_S": str(patience)}
    publishing = subprocess.Popen([sys.executable, "-m", "pipeline", "publish"], cwd=repo, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not team.runs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert team.runs(), "publish never reached the server"
    team.script("stop")
    stopped = time.monotonic()
    out, err = publishing.communicate(timeout=300)
    assert publishing.returncode == 1, out + err
    # Bounded: it answered before, so it is waited for as a restart (PIPELINE_PUBLISH_RESTART_S), no longer.
    waited = time.monotonic() - stopped
    assert patience - 5 <= waited < patience + 60  # a pause of up to 3 s may end past it
    assert "stopped answering (restarting?); retrying in" in err
    print(f"the server stopped mid-publish: publish gave up {waited:.0f} s later, in one line")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"publishing to MLflow at {team.uri} failed" in errors[0]
    assert "Traceback" not in err
    assert all((repo / "results/titanic" / v / "model.pt").exists() for v in ("mse", "nll_relu", "nll_logsoftmax"))

    team.script("start")
    again = subprocess.run([sys.executable, "-m", "pipeline", "publish"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    runs = team.runs()
    assert sorted(r.info.run_name for r in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len(team.runs("iris-alpha-sweep")) == 5


def study_runs(uri: str) -> dict[str, list]:
    """The active runs of the study's experiments on the server."""
    client = MlflowClient(uri)
    found = {}
    for name in ("titanic-loss-functions", "iris-alpha-sweep", "loss-functions-across-datasets"):
        experiment = client.get_experiment_by_name(name)
        found[name] = client.search_runs([experiment.experiment_id]) if experiment else []
    return found


def check_once(uri: str) -> dict:
    """Each run once by its digest, all FINISHED, the report and the registry pointing at them."""
    client = MlflowClient(uri)
    runs = study_runs(uri)
    titanic, sweep = runs["titanic-loss-functions"], runs["iris-alpha-sweep"]
    assert all(r.info.status == "FINISHED" for r in titanic + sweep), [r.info.status for r in titanic + sweep]
    digests = Counter(r.data.tags["pipeline.digest"] for r in titanic)
    assert max(digests.values()) == 1, digests
    ids = {r.info.run_name: r.info.run_id for r in titanic}
    parents = [r for r in sweep if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(sweep) == 1 + 4
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in sweep if r is not parents[0])
    report = next(r for r in titanic if r.info.run_name == "comparison-report")
    assert {k[len("summarizes."):]: v for k, v in report.data.tags.items() if k.startswith("summarizes.")} == {
        name: run_id for name, run_id in ids.items() if name != "comparison-report"}
    versions = client.search_model_versions("name = 'titanic-survival'")
    assert len(versions) == 1 and versions[0].run_id == ids[report.data.tags["champion"]]
    assert client.get_model_version_by_alias("titanic-survival", "champion").version == versions[0].version
    across = runs["loss-functions-across-datasets"]
    assert len(across) == 1 and across[0].info.status == "FINISHED"
    assert across[0].data.tags["report.titanic"] == report.info.run_id
    return {"runs": len(titanic) + len(sweep) + 1, "digests": len(digests) + 2}


def clear(uri: str) -> None:
    """An empty server again (runs deleted, the registered model too), for the next round."""
    client = MlflowClient(uri)
    for runs in study_runs(uri).values():
        for run in runs:
            client.delete_run(run.info.run_id)
    client.delete_registered_model("titanic-survival")


ROUNDS = 2


def test_eight_publishers_of_one_study_at_the_same_moment(team, reproduced, tmp_path):
    """Teammates who pulled the same experiment publish it at once: eight copies of one finished
    study, each publisher starting within milliseconds of the others, in several rounds.
    Every one exits 0; each run is there once by its digest, none left RUNNING; the report
    and the one registered version point at the survivors."""
    from benchmarks.publishers import Publishers, copies

    folders = copies(reproduced, tmp_path / "copies", 8)  # the study's outputs, none of its local store
    publishers = Publishers(folders, team.uri, tmp_path, rounds=ROUNDS)
    made = 0
    try:
        for round in range(ROUNDS):
            publishers.start(round)
            results = publishers.results(round)
            assert [r.rc for r in results] == [0] * 8, [r.stderr for r in results if r.rc]
            counted = check_once(team.uri)
            logged = sum(int(re.search(r"publish: (\d+) run\(s\) logged", r.stdout).group(1)) for r in results)
            duplicates = sum(int(m.group(1)) for r in results
                             for m in [re.search(r"(\d+) of them logged at the same moment", r.stdout)] if m)
            # Each survivor was logged by one of them; one that finished first may have reported
            # its own, then lost it to a smaller one finished later.
            assert logged >= 6
            made += duplicates
            print(f"round {round + 1}: 8 publishers, {counted['runs']} runs ({counted['digests']} digests) "
                  f"each once; {duplicates} duplicates logged at the same moment and removed; "
                  f"{max(r.ended for r in results) - min(r.started for r in results):.1f} s")
            if round + 1 < ROUNDS:
                clear(team.uri)
    finally:
        publishers.stop()
    print(f"{ROUNDS} rounds of 8 publishers: every exit 0, each run once, {made} duplicates removed in all")
