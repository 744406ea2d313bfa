"""The team server under load on a busy machine: eight publishers at once (four studies, each
published by two of them) while two CPU hogs keep both cores busy, and the server, PostgreSQL
and `mlflow server` both, restarted in the middle of it. Every publisher completes after the
server is back, each run is there once by its digest, none is left RUNNING; the requests'
latency is printed.

PostgreSQL is a cluster of the test's own on a free port (created, restarted and dropped
here), so the restart touches nothing else on the machine."""
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from benchmarks.publishers import Hogs, Publishers, copies, latency

from .conftest import free_port
from .test_team import TeamServer, study_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
if not shutil.which("pg_lsclusters"):
    pytestmark.append(pytest.mark.skipif(not os.environ.get("CI"), reason="PostgreSQL is not installed"))

PUBLISHERS, STUDIES = 8, 4


@pytest.fixture
def cluster():
    """A PostgreSQL cluster of its own on a free port; its port."""
    version = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
    name, port = f"load{secrets.token_hex(3)}", free_port()
    subprocess.run(["pg_createcluster", "--port", str(port), version, name], check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)


def expected_digests(folder: Path) -> set[str]:
    """The digests of the Titanic runs this copy's publish stands for (its variants and report)."""
    from pipeline.core.record import TrainingRecord
    from pipeline.core.summaries import ReportSummary
    from pipeline.tracking import report_runs
    from pipeline.tracking.variant_runs import run_digest

    with contextlib.chdir(folder):
        summary = ReportSummary.load("titanic")
        return {report_runs.digest("titanic"), *(run_digest(TrainingRecord.load(name, "titanic"), row, summary)
                                                 for name, row in summary.variants.items())}


def finished_runs(uri: str) -> int:
    with contextlib.suppress(Exception):
        return sum(r.info.status == "FINISHED" for runs in study_runs(uri).values() for r in runs)
    return 0


def test_eight_publishers_on_busy_cores_through_a_server_restart(cluster, reproduced, tmp_path):
    folders = copies(reproduced, tmp_path / "copies", PUBLISHERS, distinct=STUDIES)
    wanted = set().union(*(expected_digests(f) for f in folders))  # runs the studies share count once
    team = TeamServer(tmp_path, MLFLOW_DB_PORT=str(cluster))
    team.script("start")
    try:
        with Hogs(2):
            publishers = Publishers(folders, team.uri, tmp_path)
            try:
                publishers.start(timeout=240)
                began = time.monotonic()
                # The restart once the load is on: a few runs are in.
                deadline = began + 180
                while finished_runs(team.uri) < 3:
                    assert time.monotonic() < deadline, "no run reached the server"
                    time.sleep(0.2)
                restart = time.monotonic()
                team.script("restart")
                back = time.monotonic()
                results = publishers.results(timeout=300)
            finally:
                publishers.stop()
        ended = time.monotonic()
        failed = [r.stderr for r in results if r.rc]
        assert not failed, failed
        runs = study_runs(team.uri)
        titanic, sweep = runs["titanic-loss-functions"], runs["iris-alpha-sweep"]
        digests = Counter(r.data.tags["pipeline.digest"] for r in titanic)
        assert set(digests) == wanted and max(digests.values()) == 1, digests
        assert len(sweep) == 1 + 4
        assert all(r.info.status == "FINISHED" for r in titanic + sweep)
        # Each model is registered once, every version from a run that is there.
        versions = MlflowClient(team.uri).search_model_versions("name = 'titanic-survival'")
        keys = Counter((v.tags["variant"], v.tags["record_digest"]) for v in versions)
        assert max(keys.values()) == 1 and {v.run_id for v in versions} <= {r.info.run_id for r in titanic}
        # The four studies met on main: one of them is current, one run per role, named plainly.
        from pipeline.tracking import study_view

        current = [r for r in titanic if r.data.tags.get(study_view.CURRENT_TAG) == "yes"]
        parts = Counter(study_view.role(r) for r in current)
        roles = {*json.loads((folders[0] / "reports/titanic/summary.json").read_text())["variants"],
                 study_view.REPORT_ROLE}
        assert max(parts.values()) == 1 and set(parts) == roles, parts
        assert len({r.data.tags[study_view.CLAIM_TAG] for r in current}) == 1  # one publish's claim
        assert all(r.info.run_name == study_view.role(r) for r in current)
        waits = sum(r.stderr.count("retrying in") for r in results)
        stats = latency(results)
        print(f"{PUBLISHERS} publishers ({STUDIES} studies, each published twice), 2 CPU hogs: "
              f"{len(titanic) + len(sweep)} runs, each of {len(wanted) + 1} digests once, 0 failures; "
              f"server restarted {restart - began:.1f} s into the load, back after {back - restart:.1f} s; "
              f"all done {ended - began:.1f} s after the start; {waits} waits by the publishers; "
              f"{stats['requests']} requests, p50 {stats['p50_ms']:.0f} ms, p95 {stats['p95_ms']:.0f} ms, "
              f"max {stats['max_ms']:.0f} ms; {stats['unanswered']} unanswered (the restart), {stats['5xx']} 5xx")
    finally:
        team.script("stop")
