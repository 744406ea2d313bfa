"""The Ray backend on a real cluster on 127.0.0.1: a head started with `ray start --head` and a
second node joining it with `ray start --address` (its own raylet and worker processes, its own
session folder), both outside the repository and stopped by session (process ids) at the end.

The same small study runs through `dvc repro` locally and on the cluster (the same bytes, the
same dvc.lock), then on the cluster again with a worker killed mid-study (retried, the same
bytes again, no run logged twice); the cluster stopped mid-study, an unreachable address and
Ray missing each end in one `error:` line.
"""
import hashlib
import os
import shutil
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from pipeline import __main__ as cli
from pipeline.core.catalog import VariantFiles

from .conftest import ROOT, TINY, benchmark_copy, free_port, make_repo, small_params, store_runs

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).parent / "ray"
# Long enough per cell (about a second) for a kill to land mid-task, short enough for CI.
# The tuned study too: its cells carry it to the workers, and its bytes must be the local ones.
STUDY = {"train.epochs": 25, "iris.alpha_count": 4, "iris.max_iter": 200, "tuning.enabled": True}
# focal: a loss of the project's own (losses/focal.py), which each Ray worker imports from the copy
# of losses/ Ray ships beside the pipeline.
VARIANTS = ["focal", "nll_relu", "mse"]  # focal, first, is the reference
DATASETS = ["titanic", "wine"]
OUTPUTS = ("results", "metrics", "plots", "reports")


def ray_start(log: Path, auth: dict, *args: str) -> subprocess.Popen:
    """`ray start --block` in a session of its own: the session holds every process it starts
    (GCS, raylet, and the workers, each of which Ray puts in a process group of its own)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    env.pop("RAY_ADDRESS", None)
    with log.open("w") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", "--num-cpus=1",
                                 "--node-ip-address=127.0.0.1", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to every process of its session, then SIGKILL to what is left after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in in_session(process.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while in_session(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not in_session(process.pid):
            break
    process.wait(10)


def in_session(sid: int) -> list[int]:
    """The live processes (not zombies waiting to be reaped) of the session `sid` leads."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":  # state, ppid, pgrp, session
                found.append(int(entry.name))
    return found


def nodes(address: str, auth: dict) -> int:
    done = subprocess.run([str(RAY), "status", f"--address={address}"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **auth})
    return sum(1 for line in done.stdout.splitlines() if line.strip().startswith("1 node_"))


def wait_for(what, timeout: float = 90, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    def __init__(self, nodes_wanted: int):
        # Under /tmp with a short name: Ray's socket paths must fit in 107 characters.
        self.temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.address = f"127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        # Token authentication, as docs/team.md sets it up, with a token of the test's own (never
        # ~/.ray's): every node and every driver present it.
        token = self.temp / "auth_token"
        token.write_text(secrets.token_hex(32))
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.env = {"RAY_ADDRESS": self.address, **auth}
        self.processes = [ray_start(self.temp / "head.log", auth, "--head", f"--port={port}", "--include-dashboard=false",
                                    f"--temp-dir={self.temp / 'head'}")]
        try:
            wait_for(lambda: nodes(self.address, auth) >= 1)
            for n in range(1, nodes_wanted):
                self.processes.append(ray_start(self.temp / f"node{n}.log", auth, f"--address={self.address}",
                                                f"--temp-dir={self.temp / f'node{n}'}"))
            wait_for(lambda: nodes(self.address, auth) >= nodes_wanted)
        except BaseException:
            self.stop()
            raise

    def sessions(self) -> set[int]:
        return {process.pid for process in self.processes}  # each `ray start` leads its own session

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        leftover = [pid for p in self.processes for pid in in_session(p.pid)]
        shutil.rmtree(self.temp, ignore_errors=True)
        assert not leftover, f"processes still running: {leftover}"


@pytest.fixture(scope="module")
def cluster():
    started = Cluster(nodes_wanted=2)
    yield started
    started.stop()


def tree(repo: Path) -> dict[str, str]:
    """Every DVC output file's sha256 (the timestamps MLflow reads are kept elsewhere)."""
    return {str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in OUTPUTS for path in sorted((repo / folder).rglob("*")) if path.is_file()}


def no_ray_files(repo: Path) -> None:
    found = [p for p in repo.rglob("*") if "session_" in p.name or p.name.startswith("ray")]
    assert not found, f"Ray left files in the repository: {found}"


@pytest.fixture(scope="module")
def studies(tmp_path_factory, cluster):
    """The same small study (two datasets, three variants, the shipped Titanic) through `dvc
    repro`: locally, then in a second copy with `backend: ray` on the two-node cluster."""
    root = tmp_path_factory.mktemp("studies")
    params = small_params(variants=VARIANTS, datasets=DATASETS, **STUDY)
    del params["datasets"]["titanic"]["source"]["url"]  # the shipped copy: no server to keep up
    repos, outs = {}, {}
    for kind in ("local", "ray"):
        repos[kind] = make_repo(root / kind, dict(params, backend="ray") if kind == "ray" else params)
        outs[kind] = run(repos[kind], cluster.env if kind == "ray" else {}, "dvc", "repro")
    return repos, outs


def run(repo: Path, env: dict, *command: str) -> str:
    full = {**os.environ, **env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", *(() if "RAY_ADDRESS" in env else ("RAY_ADDRESS",))):
        full.pop(name, None)
    done = subprocess.run(command, cwd=repo, env=full, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_study_on_two_nodes_writes_the_local_bytes(studies):
    (repos, outs) = studies
    local, ray = repos["local"], repos["ray"]
    for dataset in DATASETS:  # each stage's cells ran as tasks, on both nodes
        assert f"train@{dataset}: 3 variant(s) trained, 0 kept (inputs unchanged) (on the Ray cluster at" in outs["ray"]
    assert "2 node(s))" in outs["ray"]
    assert tree(local) == tree(ray) and len(tree(local)) > 40
    assert "results/wine/mse/tuned.json" in tree(ray)
    # backend is no stage's param: the two locks are the same file
    assert (local / "dvc.lock").read_text() == (ray / "dvc.lock").read_text()
    assert sorted(r.info.run_name for r in store_runs(ray)) == sorted(r.info.run_name for r in store_runs(local))
    no_ray_files(ray)


def ray_tasks(sessions: set[int]) -> list[int]:
    """Process ids of the Ray workers of these sessions training a cell now (a worker's title
    names the task it runs, from the task's first line to its last)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::train ")
                    and os.getsid(int(entry.name)) in sessions):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_a_worker_killed_mid_study_is_retried_to_the_same_bytes(studies, cluster):
    repos, _ = studies
    ray, expected = repos["ray"], tree(repos["local"])
    runs = sorted(r.info.run_name for r in store_runs(ray))
    for dataset in DATASETS:  # every cell trains again
        shutil.rmtree(ray / "results" / dataset)
    env = {**os.environ, **cluster.env,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    repro = subprocess.Popen(["dvc", "repro"], cwd=ray, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        while True:  # a worker seen mid-task, and still in it when killed
            victim = wait_for(lambda: ray_tasks(cluster.sessions()), timeout=180, every=0.02)[0]
            if victim in ray_tasks(cluster.sessions()):
                os.kill(victim, signal.SIGKILL)
                break
        out, _ = repro.communicate(timeout=900)
    finally:
        repro.kill()
    assert repro.returncode == 0, out
    assert out.count("the task will be retried") == 1, out  # Ray's own line, once per retry
    assert tree(ray) == expected
    # Every run once: the re-trained cells are the bytes already logged, so nothing is logged again.
    assert sorted(r.info.run_name for r in store_runs(ray)) == runs
    no_ray_files(ray)


def test_train_study_sends_every_dataset_s_cells_at_once_then_dvc_keeps_them(studies, cluster):
    repos, _ = studies
    ray = repos["ray"]
    for dataset in DATASETS:
        shutil.rmtree(ray / "results" / dataset)
    out = run(ray, cluster.env, sys.executable, "-m", "pipeline", "train-study")
    for dataset in DATASETS:
        assert f"train@{dataset}: 3 variant(s) trained, 0 kept" in out
    # Every dataset's cells planned (and sent) before the first came back; train@ stages one
    # after another would print titanic's results before wine's plans.
    lines = out.splitlines()
    planned = [i for i, line in enumerate(lines) if ": training (" in line]
    came_back = [i for i, line in enumerate(lines) if " replica(s), final val accuracy" in line]
    assert len(planned) == len(came_back) == 6 and max(planned) < min(came_back)
    assert out.count("(on the Ray cluster at") == 2 and "2 node(s))" in out
    assert tree(ray) == tree(repos["local"])
    assert "Data and pipelines are up to date" in run(ray, {}, "dvc", "status")  # the bytes dvc.lock holds

    # An edit: train-study trains what it touches on every dataset at once; dvc repro, local,
    # finds those cells' inputs unchanged, keeps them and records them.
    params = yaml.safe_load((ray / "params.yaml").read_text())
    params["variants"]["mse"]["epochs"] = 26
    (ray / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(ray, cluster.env, sys.executable, "-m", "pipeline", "train-study")
    assert "train@titanic: 1 variant(s) trained, 2 kept" in out and "train@wine: 1 variant(s) trained, 2 kept" in out
    again = run(ray, {}, "dvc", "repro")
    for dataset in DATASETS:
        assert f"train@{dataset}: 0 variant(s) trained, 3 kept (inputs unchanged)" in again
    assert "Running stage 'report'" in again and "Data and pipelines are up to date" in run(ray, {}, "dvc", "status")


def test_the_benchmark_fans_its_tables_out_on_two_nodes_to_the_local_bytes(cluster, tmp_path):
    """The benchmark (keel/) on three KEEL tables: `train-study` sends every table's cells in one
    fan-out; `dvc repro` then keeps them; every output is the bytes of a local `dvc repro`."""
    local, ray = benchmark_copy(tmp_path / "local"), benchmark_copy(tmp_path / "ray")
    run(local, {}, "dvc", "repro")
    run(ray, {}, "dvc", "repro", *(f"preprocess@{name}" for name in TINY))
    out = run(ray, {**cluster.env, "PYTHONPATH": ".."}, sys.executable, "-m", "pipeline", "train-study")
    assert all(f"train@{name}: 3 variant(s) trained, 0 kept" in out for name in TINY)
    assert out.count("(on the Ray cluster at") == len(TINY) and "2 node(s))" in out
    again = run(ray, {}, "dvc", "repro")
    assert all(f"train@{name}: 0 variant(s) trained, 3 kept (inputs unchanged)" in again for name in TINY)
    assert tree(ray) == tree(local) and len(tree(local)) > 50
    assert (local / "dvc.lock").read_text() == (ray / "dvc.lock").read_text()
    no_ray_files(ray)


def test_the_cluster_stopped_mid_study_leaves_nothing_half_written(prepared):
    path = prepared.params(variants=["mse", "l1", "cross_entropy", "nll_logsoftmax"], **{"train.epochs": 150})
    lone = Cluster(nodes_wanted=1)  # one CPU: the cells train one after another
    try:
        env = {**os.environ, **lone.env, "PYTHONPATH": str(ROOT)}
        train = subprocess.Popen([sys.executable, "-m", "pipeline", "train", "titanic"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = lambda: list(Path("results/titanic").glob("*/inputs.json")) or train.poll() is not None  # noqa: E731
        wait_for(first, timeout=180, every=0.02)  # one cell written, the others still to come
        assert train.poll() is None, train.communicate()
        # The driver frozen while the next cell finishes and the cluster stops, as a loaded
        # machine can leave it: it wakes to outputs Ray called ready on a node now gone, and to
        # its own node's raylet gone (once a broken pipe, once a minute's wait and a silent exit).
        train.send_signal(signal.SIGSTOP)
        time.sleep(5)
    finally:
        lone.stop()
        train.send_signal(signal.SIGCONT)
    try:
        out, err = train.communicate(timeout=120)
    finally:
        train.kill()
    assert train.returncode == 1, out + err
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith(f"error: the Ray cluster at {lone.address} stopped mid-study"), err
    assert not list(Path("results").rglob("*.tmp")) and not list(Path("metrics").rglob("*.tmp"))
    # What was written is whole: the local re-run keeps it and trains the rest.
    written = [name for name in yaml.safe_load(path.read_text())["variants"] if VariantFiles(name, "titanic").inputs.exists()]
    assert 1 <= len(written) < 4
    env.pop("RAY_ADDRESS")
    again = subprocess.run([sys.executable, "-m", "pipeline", "train", "titanic"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert f"train@titanic: {4 - len(written)} variant(s) trained, {len(written)} kept (inputs unchanged)" in again.stdout


def test_an_unreachable_address_is_one_line(prepared, monkeypatch, capsys):
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    assert cli.main(["train", "titanic"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"error: the Ray cluster at {address} is unreachable (Connection refused); start its head with "
        "`ray start --head` (docs/team.md), or fix RAY_ADDRESS")
    assert not Path("results").exists() and not Path("metrics").exists()


def test_ray_missing_says_how_to_install_it(prepared, monkeypatch, capsys):
    prepared.params(backend="ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the package
    assert cli.main(["train", "titanic"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == ("error: backend ray: Ray is not installed; run `make install-cluster` "
                                            "(or pip install -r requirements-cluster.lock)")
    assert not Path("results").exists()
