"""`team/remote.sh set`: what is shared goes to .dvc/config, what is personal to .dvc/config.local,
and a target it cannot read configures nothing (the transfers themselves: tests/test_remote.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def script(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "team/remote.sh"), *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                               **(env or {})})


@pytest.fixture
def dvc_repo(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


@pytest.mark.parametrize("target,url,user", [
    ("alice@lab.example.org:/srv/dvc/titanic", "ssh://lab.example.org/srv/dvc/titanic", "alice"),
    ("ssh://bob@10.0.0.5:2222/srv/dvc", "ssh://10.0.0.5:2222/srv/dvc", "bob"),
    ("lab.example.org:/srv/dvc", "ssh://lab.example.org/srv/dvc", None),
])
def test_shared_and_personal_settings_go_apart(dvc_repo, target, url, user):
    done = script(dvc_repo, "set", target, env={"DVC_SSH_KEYFILE": "~/.ssh/id_lab"})
    assert done.returncode == 0, done.stderr
    shared = (dvc_repo / ".dvc/config").read_text()
    personal = (dvc_repo / ".dvc/config.local").read_text()
    assert f"url = {url}" in shared and "remote = team" in shared
    assert "user" not in shared and "keyfile" not in shared
    assert ("user = " + user in personal) if user else "user" not in personal
    assert "keyfile = ~/.ssh/id_lab" in personal
    # Run again (a new address, say): the remote is modified, not added twice.
    assert script(dvc_repo, "set", target).returncode == 0
    assert (dvc_repo / ".dvc/config").read_text().count('remote "team"') == 1


@pytest.mark.parametrize("target,expected", [
    ("lab.example.org", "lab.example.org: not user@host:/path or ssh://user@host:port/path"),
    ("alice@lab.example.org:dvc/titanic", "the path must be absolute"),
])
def test_a_target_it_cannot_read_configures_nothing(dvc_repo, target, expected):
    before = (dvc_repo / ".dvc/config").read_text()
    done = script(dvc_repo, "set", target)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and expected in done.stderr
    assert (dvc_repo / ".dvc/config").read_text() == before and not (dvc_repo / ".dvc/config.local").exists()
