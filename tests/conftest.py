"""Shared fixtures: a small project folder, a synthetic Titanic CSV, a loopback HTTP server."""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

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
    """params.yaml, cut down: two epochs, a few variants."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 2
    keep = overrides.pop("variants", ["nll_relu", "nll_logsoftmax", "mse"])
    params["variants"] = {name: params["variants"][name] for name in keep}
    params["report"]["compare"] = [name for name in params["report"]["compare"] if name in keep]
    for key, value in overrides.items():
        section, _, leaf = key.partition(".")
        if leaf:
            params[section][leaf] = value
        else:
            params[section] = value
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


@pytest.fixture
def serve():
    """serve({'/titanic.csv': bytes}) -> base URL of a loopback server; stopped after the test."""
    servers = []

    def start(files: dict[str, bytes], lie_about_length: bool = False) -> str:
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

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def copy_pipeline(target: Path) -> None:
    shutil.copytree(ROOT / "pipeline", target / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture
def prepared(project):
    """A project with synthetic Titanic data fetched and preprocessed; returns the project."""
    from pipeline import preprocess_titanic
    from pipeline.paths import TITANIC_RAW, TITANIC_SOURCE

    project.params()
    body = titanic_csv(rows=240)
    TITANIC_RAW.parent.mkdir(parents=True, exist_ok=True)
    TITANIC_RAW.write_bytes(body)
    TITANIC_SOURCE.write_text('{"source": "url", "address": "http://127.0.0.1/titanic.csv", '
                              '"sha256": "%s", "rows": 240, "bytes": %d}' % ("ab" * 32, len(body)))
    preprocess_titanic.main()
    return project


@pytest.fixture
def iris_prepared(project):
    """A project with Iris fetched and preprocessed (the seed's split); returns the project."""
    from pipeline import fetch_iris, preprocess_iris

    project.params()
    fetch_iris.main()
    preprocess_iris.main()
    return project
