"""Shared fixtures: a small project folder, a synthetic Titanic CSV, a loopback HTTP server, and the
small study reproduced once per session, copied per test."""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

# The pipeline first: it pins the numerics (pipeline/core/numerics.py) before numpy or torch loads, so
# what a test computes in this process is what a stage computes.
import pipeline  # noqa: F401  (isort: skip)
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def titanic_csv(rows: int = 240, seed: int = 0, lower_case: bool = False) -> bytes:
    """Seed-shaped Titanic rows where survival depends on sex and class, some ages missing."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], rows)
    pclass = rng.integers(1, 4, rows)
    age = rng.uniform(1, 70, rows).round(1)
    fare = (rng.exponential(20, rows) + (4 - pclass) * 15).round(2)
    chance = 0.15 + 0.55 * (sex == "female") + 0.1 * (pclass == 1)
    survived = (rng.uniform(size=rows) < chance).astype(int)
    names = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "Fare", "Embarked"]
    missing = "?" if lower_case else ""
    lines = [",".join(n.lower() for n in names) if lower_case else ",".join(names)]
    for i in range(rows):
        shown_age = missing if i % 9 == 4 else str(age[i])
        lines.append(f'{i + 1},{survived[i]},{pclass[i]},"Passenger, No. {i}",{sex[i]},{shown_age},{fare[i]},S')
    return ("\n".join(lines) + "\n").encode()


def small_params(**overrides) -> dict:
    """params.yaml, cut down: Titanic, two epochs, a few variants, a study of 2 seeds x 2 splits."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 2
    keep = overrides.pop("variants", ["nll_relu", "nll_logsoftmax", "mse"])
    params["variants"] = {name: params["variants"][name] for name in keep}
    params["report"]["compare"] = [name for name in params["report"]["compare"] if name in keep]
    if params["report"].get("square_loss") not in keep:
        params["report"].pop("square_loss", None)
    params["study"].update(seeds=2, splits=2)
    # The fixed study alone unless asked (tests/test_tuning.py asks): the tuned study at two rates.
    params["tuning"].update(enabled=False, lr=[0.001, 0.01])
    if params["study"]["reference"] not in keep:
        params["study"]["reference"] = "nll_logsoftmax" if "nll_logsoftmax" in keep else keep[0]
    # Titanic alone unless asked: each dataset is two more processes in every `dvc repro`.
    datasets = overrides.pop("datasets", ["titanic"])
    params["datasets"] = {name: params["datasets"][name] for name in datasets}
    for key, value in overrides.items():  # "a.b.c": value sets params["a"]["b"]["c"]
        *path, leaf = key.split(".")
        section = params
        for part in path:
            section = section[part]
        section[leaf] = value
    if params["report"].get("plotted") not in params["datasets"]:
        params["report"].pop("plotted", None)
    return params


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory; write params with `project.params(...)`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)

    class Project:
        path = tmp_path

        def params(self, **overrides) -> Path:
            target = tmp_path / "params.yaml"
            target.write_text(yaml.safe_dump(small_params(**overrides), sort_keys=False))
            return target

        def uri(self) -> str:
            return f"sqlite:///{tmp_path / 'mlflow.db'}"

    return Project()


def file_handler(files: dict[str, bytes], lie_about_length: bool = False):
    """An HTTP handler answering GET with these files' bytes (404 for any other path)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            # A download that stops halfway: the header promises more than is sent.
            self.send_header("Content-Length", str(len(body) * (2 if lie_about_length else 1)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def serve():
    """serve({'/titanic.csv': bytes}) -> base URL of a loopback server; stopped after the test."""
    servers = []
    yield lambda files, lie_about_length=False: loopback(file_handler(files, lie_about_length), servers)
    stop(servers)


def loopback(handler, servers: list) -> str:
    """Serve `handler` on a free loopback port in a thread; the server joins `servers` (for `stop`)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_address[1]}"


def stop(servers: list) -> None:
    for server in servers:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback port nothing listens on now (for the servers tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_pipeline(target: Path) -> None:
    """The code (the pipeline and the project's own losses) and the Titanic copy shipped with it."""
    for code in ("pipeline", "losses"):
        shutil.copytree(ROOT / code, target / code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "shipped", target / "data" / "shipped")


def sh(repo: Path, *command: str, env: dict | None = None) -> str:
    """Run a command in `repo` with this venv first on PATH, the tracking store and DVC root the
    tests may set left out unless `env` (added to this process's environment) gives them; its
    output, or a failure naming it."""
    inherited = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env = {**inherited, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def store_runs(repo: Path, experiment: str = "titanic-loss-functions"):
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id])


@pytest.fixture(scope="session")
def titanic_source():
    """The synthetic Titanic file (200 rows) on a loopback server for the whole session: (url, sha256)."""
    body = titanic_csv(rows=200)
    servers = []
    yield loopback(file_handler({"/titanic.csv": body}), servers) + "/titanic.csv", hashlib.sha256(body).hexdigest()
    stop(servers)


def study_params(source: tuple[str, str]) -> dict:
    """The small study of `repo`: Titanic from `source`, 3 variants, 2 epochs, 2 x 2 replicas, 4 alphas."""
    url, sha256 = source
    return small_params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": sha256,
                           "iris.alpha_count": 4, "iris.max_iter": 200})


@pytest.fixture
def repo(tmp_path, titanic_source):
    """A small copy of the project (3 variants, 2 epochs, 4 alphas) as a git + DVC repository,
    nothing reproduced yet (a test that starts with `dvc repro` takes `reproduced`)."""
    return make_repo(tmp_path / "repo", study_params(titanic_source))


# Loaded at start-up by every Python process of the template's `dvc repro` (PYTHONPATH): at exit,
# a process that ran project code writes its command line and the project modules it loaded, for
# tests/test_stage_deps.py (DVC's own processes load none and write nothing).
TRACER = '''\
import atexit
import json
import os
import sys


def _write_trace():
    package = os.environ["STAGE_DEPS_PACKAGE"]
    files = {os.path.realpath(module.__file__) for module in list(sys.modules.values())
             if isinstance(getattr(module, "__file__", None), str)}
    mine = sorted(f for f in files if f.startswith(package + os.sep))
    if mine:
        with open(os.path.join(os.environ["STAGE_DEPS_TRACE"], f"{os.getpid()}.json"), "w") as out:
            json.dump({"argv": sys.orig_argv, "modules": mine}, out)


if os.environ.get("STAGE_DEPS_TRACE"):
    atexit.register(_write_trace)  # registered first, so it runs last of all exit hooks
'''


@dataclass
class Template:
    """The small study reproduced once per session: its repository (committed after `dvc repro`),
    what that `dvc repro` printed, and each of its processes' trace (TRACER)."""
    repo: Path
    output: str
    traces: list[dict]


@pytest.fixture(scope="session")
def study_template(tmp_path_factory, titanic_source) -> Template:
    """`repo`'s study through a real `dvc repro`, once for the session; tests take copies
    (`reproduced`), so each starts where a first repro ends without paying for one."""
    base = tmp_path_factory.mktemp("study-template")
    repo = make_repo(base / "repo", study_params(titanic_source))
    hook, traces = base / "hook", base / "traces"
    hook.mkdir()
    traces.mkdir()
    (hook / "sitecustomize.py").write_text(TRACER)
    output = sh(repo, "dvc", "repro", env={
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        "STAGE_DEPS_TRACE": str(traces), "STAGE_DEPS_PACKAGE": os.path.realpath(repo / "pipeline")})
    commit_all(repo, "repro")
    return Template(repo, output, [json.loads(path.read_text()) for path in sorted(traces.glob("*.json"))])


@pytest.fixture
def reproduced(study_template, tmp_path) -> Path:
    """A copy of the session's reproduced study (git, DVC's cache, the MLflow store), its own to change."""
    return copy_study(study_template.repo, tmp_path / "repo")


def copy_study(template: Path, target: Path) -> Path:
    """`template` copied to `target` as if reproduced there: the MLflow store's absolute artifact
    locations (experiments, runs, model versions) moved to the copy's own folder, and DVC's
    machine-local state (.dvc/tmp: file hashes by inode, locks) left behind for DVC to rebuild."""
    shutil.copytree(template, target, symlinks=True,
                    ignore=lambda folder, names: ["tmp"] if Path(folder) == template / ".dvc" else [])
    with contextlib.closing(sqlite3.connect(target / "mlflow.db")) as db, db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f"pragma table_info('{table}')")
                           if any(kind in row[2].upper() for kind in ("CHAR", "TEXT"))]:
                db.execute(f"update '{table}' set \"{column}\" = replace(\"{column}\", ?, ?) "
                           f"where instr(\"{column}\", ?)", (str(template), str(target), str(template)))
    return target


def commit_all(repo: Path, message: str) -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-qm", message)


def make_repo(repo: Path, params: dict) -> Path:
    """A copy of the project with these params, as a git + DVC repository on main, committed."""
    repo.mkdir()
    copy_pipeline(repo)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore", "MLproject", "python_env.yaml", "requirements.txt"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q", "-b", "main")  # the branch the `champion` alias follows
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-qm", "init")
    return repo


KEEL = ROOT / "keel"  # the benchmark's DVC project (docs/keel.md)
# Three small KEEL tables unlike each other: 3 classes and numbers; words (one-hot); 60 features.
TINY = ("hayes-roth", "breast", "sonar")


def benchmark_copy(where: Path) -> Path:
    """A copy of the project (its default study cut to three variants, two epochs) with the
    benchmark on TINY at one seed x three splits (sonar capped), committed; the benchmark's folder returned."""
    repo = make_repo(where, small_params(variants=["cross_entropy", "mse", "square_loss"]))
    outputs = ("data", "results", "plots", "metrics", "reports", "logs", "dvc.lock", "tmp", "cache")
    shutil.copytree(KEEL, repo / "keel", ignore=lambda folder, names: [n for n in names if n in outputs])
    params = yaml.safe_load((KEEL / "params.yaml").read_text())
    params.update(datasets={name: params["datasets"][name] for name in TINY}, study={"seeds": 1, "splits": 3},
                  tuning={"enabled": False}, report={"plotted": TINY[0]})
    params["datasets"]["sonar"]["max_rows"] = 150  # of its 208: a capped table, as the largest are
    (repo / "keel" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(repo, "benchmark")
    return repo / "keel"


@pytest.fixture
def prepared(project):
    """A project with synthetic Titanic data fetched and preprocessed (a 2 x 2 study); returns the project."""
    from pipeline.core.catalog import DatasetFiles

    TITANIC = DatasetFiles("titanic")
    from pipeline.data import preprocess as preprocess_titanic

    project.params()
    body = titanic_csv(rows=240)
    TITANIC.raw.parent.mkdir(parents=True, exist_ok=True)
    TITANIC.raw.write_bytes(body)
    TITANIC.source.write_text('{"source": "url", "address": "http://127.0.0.1/titanic.csv", '
                              '"sha256": "%s", "rows": 240, "bytes": %d}' % ("ab" * 32, len(body)))
    preprocess_titanic.main("titanic")
    return project


@pytest.fixture
def iris_prepared(project):
    """A project with Iris fetched and preprocessed (the seed's split); returns the project."""
    from pipeline.iris import fetch as fetch_iris
    from pipeline.iris import preprocess as preprocess_iris

    project.params()
    fetch_iris.main()
    preprocess_iris.main()
    return project


# The suite's longest modules, longest first, as measured (seconds of tests, fresh-clone CI,
# 2026-12-05). `make test` hands a module to each of two workers in collection order, so
# alphabetical order started the team server's 570 s late, and the other worker idled at the end:
# 1,550 s of wall time where these first take 1,395 s (simulated on the same timings).
LONGEST_FIRST = ("test_team", "test_cluster", "test_pipeline_e2e", "test_publish", "test_serving",
                 "test_troubleshooting", "test_load", "test_remote", "test_browser", "test_experiments",
                 "test_launch", "test_faults", "test_benchmark", "test_across")  # test_benchmark: ~90 s here


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: the rest as collected
