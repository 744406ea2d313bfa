"""Each run once when publishers meet, and a server that is down told from one that is busy.

The protocol (store.resolve, report_runs.champion_version) on a real SQLite store, with the
runs other publishers would leave: duplicates, failed runs, runs still being logged by a live
process, left by a dead one, or by another machine long ago. Patience against real sockets: a
port nobody listens on, a server answering 503, one that never answers."""
import http.server
import json
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from pipeline.core.errors import PipelineError
from pipeline.tracking import publish, report_runs, store

from .conftest import free_port, loopback, stop

DIGEST = "d" * 64
REGISTERED = "titanic-survival"  # params.yaml: datasets.titanic.registered_as


@pytest.fixture
def client(project):
    import mlflow

    # MLflow's registry finds a models:/ source through the global tracking URI (publish sets
    # it), not through the client's; left alone it is whatever an earlier test set.
    mlflow.set_tracking_uri(project.uri())
    client = MlflowClient(project.uri())
    client.experiment = client.create_experiment("once")
    yield client
    mlflow.set_tracking_uri(None)


def make_run(client, status="FINISHED", owner: store.Publisher | None = None, at_ms: int | None = None, **tags):
    tags = {store.DIGEST_TAG: DIGEST, **tags}
    if owner is not None:
        value = json.loads(owner.tag())
        if at_ms is not None:
            value["at"] = at_ms
        tags[store.PUBLISHER_TAG] = json.dumps(value)
    run = client.create_run(client.experiment, tags=tags)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def active(client):
    return {r.info.run_id: r for r in client.search_runs([client.experiment])}


def test_the_smallest_finished_run_survives_and_only_abandoned_runs_go(client, tmp_path):
    me = store.Publisher.this()
    finished = sorted(make_run(client) for _ in range(3))
    # The DVC experiment a duplicate stood for is named on the survivor.
    client.set_tag(finished[2], "dvc.exp.lofty-lynx", "logged")
    failed = make_run(client, "FAILED")
    mine = make_run(client, "RUNNING", owner=me)  # an earlier attempt of this very process
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = make_run(client, "RUNNING", owner=store.Publisher(me.host, me.machine, int(exited.stdout), "1"))
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        try:
            logging = make_run(client, "RUNNING", owner=store.Publisher(me.host, me.machine, alive.pid,
                                                                       store._started(alive.pid)))
            elsewhere = store.Publisher("laptop", "another-boot/pid:[1]", 4242, "99")
            fresh = make_run(client, "RUNNING", owner=elsewhere)
            stale = make_run(client, "RUNNING", owner=elsewhere, at_ms=int(time.time() * 1000) - store.STALE_S * 1000 - 1)
            survivor = store.resolve(client, client.experiment, DIGEST, me)
        finally:
            alive.kill()
    assert survivor.info.run_id == finished[0]
    left = active(client)
    assert set(left) == {finished[0], logging, fresh}  # the live process's run and the recent foreign one stay
    assert left[finished[0]].data.tags["dvc.exp.lofty-lynx"] == "logged"
    assert {failed, mine, dead, stale, *finished[1:]}.isdisjoint(left)


def test_nothing_finished_means_log_it_and_a_live_run_is_not_taken(client):
    me = store.Publisher.this()
    elsewhere = store.Publisher("laptop", "another-boot/pid:[1]", 4242, "99")
    running = make_run(client, "RUNNING", owner=elsewhere)
    assert store.resolve(client, client.experiment, DIGEST, me) is None
    assert set(active(client)) == {running}


def test_a_losing_sweep_parent_goes_with_its_children_and_orphans_go(client):
    me = store.Publisher.this()
    child_tag = "pipeline.parent_digest"
    parents = sorted(make_run(client) for _ in range(2))
    children = {p: [make_run(client, **{store.PARENT_TAG: p, child_tag: DIGEST, store.DIGEST_TAG: ""})
                    for _ in range(3)] for p in parents}
    orphan = make_run(client, **{store.PARENT_TAG: "0" * 32, child_tag: DIGEST, store.DIGEST_TAG: ""})
    # A retried create left a second child, never logged, under the winning parent.
    stray = make_run(client, "RUNNING", **{store.PARENT_TAG: parents[0], child_tag: DIGEST, store.DIGEST_TAG: ""})
    assert store.resolve(client, client.experiment, DIGEST, me, child_tag).info.run_id == parents[0]
    assert set(active(client)) == {parents[0], *children[parents[0]]}
    assert orphan not in active(client) and stray not in active(client)


def with_model(client, run_id: str) -> str:
    """The run's logged model, as mlflow.pytorch.log_model leaves it: READY, an output of the run."""
    from mlflow.entities import LoggedModelOutput

    model = client.create_logged_model(client.experiment, name="model", source_run_id=run_id)
    client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def test_versions_registered_at_the_same_moment_resolve_to_one(client):
    """Three publishers registered the same champion model at once; one version stays, with
    the alias; when its run loses to another publisher's, the version is made again from the
    survivor and the one pointing at the deleted run goes."""
    from types import SimpleNamespace

    runs = sorted(make_run(client, "RUNNING") for _ in range(2))
    models = {run_id: with_model(client, run_id) for run_id in runs}
    for run_id in runs:
        client.set_terminated(run_id, "FINISHED")
    record = SimpleNamespace(variant="mse", dataset="titanic", digest="r" * 64, seed=42,
                             config=SimpleNamespace(loss="MSELoss"), head=SimpleNamespace(last_activation="Sigmoid"),
                             data=SimpleNamespace(sha256="d" * 64), confusion_matrix=[[1, 0], [0, 1]])
    summary = SimpleNamespace(champion_rule="the rule", reference="l1", variants={"mse": SimpleNamespace(verdict="better")})
    client.create_registered_model(REGISTERED)
    tags = report_runs.identity(record)
    for _ in range(3):
        client.create_model_version(REGISTERED, source=f"models:/{models[runs[1]]}", run_id=runs[1],
                                    model_id=models[runs[1]], tags=tags)
    version = report_runs.register_champion(client, REGISTERED, runs[1], record, summary)
    versions = client.search_model_versions(f"name = '{REGISTERED}'")
    assert [str(v.version) for v in versions] == [str(version)] == ["1"]
    assert str(client.get_model_version_by_alias(REGISTERED, report_runs.ALIAS).version) == "1"
    assert store.resolve(client, client.experiment, DIGEST, store.Publisher.this()).info.run_id == runs[0]
    version = report_runs.register_champion(client, REGISTERED, runs[0], record, summary)
    versions = client.search_model_versions(f"name = '{REGISTERED}'")
    assert [(str(v.version), v.run_id) for v in versions] == [(str(version), runs[0])]
    assert str(client.get_model_version_by_alias(REGISTERED, report_runs.ALIAS).version) == str(version)


class Answering(http.server.BaseHTTPRequestHandler):
    """Every request answered with `status` (and MLflow's error body), or after `delay` s."""
    status, delay = 503, 0.0

    def do_GET(self):
        time.sleep(self.delay)
        code = {503: "TEMPORARILY_UNAVAILABLE", 429: "REQUEST_LIMIT_EXCEEDED"}.get(self.status, "BAD_REQUEST")
        body = json.dumps({"error_code": code, "message": "busy"}).encode()
        try:
            self.send_response(self.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def answering():
    servers = []

    def start(status=503, delay=0.0) -> str:
        return loopback(type("Handler", (Answering,), {"status": status, "delay": delay}), servers)

    yield start
    stop(servers)


def failing(uri: str) -> Exception:
    with pytest.raises(Exception) as caught:
        MlflowClient(uri).get_experiment_by_name("anything")
    return caught.value


@pytest.fixture
def quick_http(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")


def test_down_busy_and_slow_are_told_apart(answering, quick_http):
    assert store.failure(failing(f"http://127.0.0.1:{free_port()}")) == "down"
    assert store.failure(failing(answering(503))) == "busy"
    assert store.failure(failing(answering(429))) == "busy"
    assert store.failure(failing(answering(200, delay=3))) == "busy"  # no answer within the read timeout
    assert store.failure(failing(answering(400))) is None  # a bad request is not worth waiting for
    assert store.failure(RuntimeError("(sqlite3.OperationalError) database is locked")) == "locked"


def test_a_refused_connection_fails_at_once_unless_the_server_answered_before(quick_http, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(PipelineError, match=f"publishing to MLflow at {uri} failed: MlflowException"):
        publish.patiently(lambda: MlflowClient(uri).get_experiment_by_name("x"), uri, publish.Patience())
    assert time.monotonic() - started < 10
    assert "retrying" not in capsys.readouterr().err
    # Answered, then refused: a restart, waited for (here 3 s), then the same one line.
    patience = publish.Patience()
    patience.RESTART_S = 3
    patience.answered()
    with pytest.raises(PipelineError, match=f"publishing to MLflow at {uri} failed: MlflowException"):
        publish.patiently(lambda: MlflowClient(uri).get_experiment_by_name("x"), uri, patience)
    assert "stopped answering (restarting?); retrying in" in capsys.readouterr().err


def test_a_busy_server_is_waited_for_within_bounds_then_one_line_says_nothing_was_lost(answering, quick_http,
                                                                                       capsys):
    uri = answering(503)
    patience = publish.Patience()
    patience.BUSY_S = 4
    started = time.monotonic()
    with pytest.raises(PipelineError) as caught:
        publish.patiently(lambda: MlflowClient(uri).get_experiment_by_name("x"), uri, patience)
    assert time.monotonic() - started < 4 + 5
    line = str(caught.value)
    assert "\n" not in line and f"publishing to MLflow at {uri} failed: the server was overloaded" in line
    assert "503 Service Unavailable" in line and "nothing was lost" in line
    err = capsys.readouterr().err
    assert f"publish: {uri} is busy (503 Service Unavailable); retrying in" in err


def test_a_busy_server_that_recovers_is_used(answering, quick_http):
    """The same call, busy twice and then answered, as when publishers back off and return."""
    uri = answering(503)
    calls = []

    def attempt():
        calls.append(time.monotonic())
        if len(calls) < 3:
            MlflowClient(uri).get_experiment_by_name("x")
        return "published"

    assert publish.patiently(attempt, uri, publish.Patience()) == "published"
    pauses = [b - a for a, b in zip(calls, calls[1:])]
    assert len(calls) == 3 and all(p >= 1 for p in pauses)  # jittered, at least half of 2 s, then 4 s


@pytest.mark.parametrize("given, waits", [("12.5", 12.5), ("0", 0.0), ("soon", None), ("-1", None)])
def test_the_wait_for_a_restart_is_the_team_s_to_set(monkeypatch, given, waits):
    monkeypatch.setenv("PIPELINE_PUBLISH_RESTART_S", given)
    if waits is None:
        with pytest.raises(PipelineError, match=f"PIPELINE_PUBLISH_RESTART_S='{given}': not a number of seconds"):
            publish.Patience()
    else:
        assert publish.Patience().RESTART_S == waits
