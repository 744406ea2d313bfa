"""Two clones sharing one study for real: OpenSSH's server on 127.0.0.1 as the DVC remote (a key
pair made for the test, no password login), a bare git repository as `origin`, the team's
tracking server, and each clone with its own DVC cache. Faults: the SSH server stopped during a
push, and a key the server refuses."""
import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, free_port
from .test_team import team  # noqa: F401 (the team tracking server fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SSHD = Path("/usr/sbin/sshd")
if not SSHD.exists():
    pytestmark.append(pytest.mark.skipif(not os.environ.get("CI"),
                                         reason="no OpenSSH server: apt-get install openssh-server"))
REMOTE = str(ROOT / "team/remote.sh")


class SSHServer:
    """sshd on a free loopback port, and a teammate's home whose ~/.ssh holds the key it accepts
    and the server's host key (as after a first `ssh` to it)."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "sshd"
        self.home = tmp / "home"
        self.store = tmp / "dvc-store"
        for folder in (self.dir, self.home / ".ssh", self.store):
            folder.mkdir(parents=True)
        self.port = free_port()
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", str(self.dir / "host_key")], check=True)
        subprocess.run([*keygen, "-f", str(self.home / ".ssh/id_ed25519")], check=True)
        subprocess.run([*keygen, "-f", str(tmp / "wrong_key")], check=True)
        self.wrong_key = tmp / "wrong_key"
        (self.dir / "authorized_keys").write_bytes((self.home / ".ssh/id_ed25519.pub").read_bytes())
        host_key = " ".join((self.dir / "host_key.pub").read_text().split()[:2])
        (self.home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key}\n")
        (self.home / ".gitconfig").write_text("[user]\n\temail = teammate@localhost\n\tname = Teammate\n")
        (self.dir / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.dir / 'host_key'}
PidFile {self.dir / 'sshd.pid'}
AuthorizedKeysFile {self.dir / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
        self.process = None
        self.url = f"ssh://{os.environ.get('USER', 'root')}@127.0.0.1:{self.port}{self.store}"

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege-separation folder
        self.process = subprocess.Popen([str(SSHD), "-D", "-f", str(self.dir / "sshd_config"),
                                         "-E", str(self.dir / "sshd.log")])
        deadline = time.monotonic() + 90  # readiness, polled: a busy machine starts sshd slowly
        while subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", f"UserKnownHostsFile={self.home}/.ssh/known_hosts",
                              "-i", str(self.home / ".ssh/id_ed25519"), "-p", str(self.port), "127.0.0.1",
                              "true"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, (self.dir / "sshd.log").read_text()
            time.sleep(0.2)

    def stop(self) -> None:
        """The listener and every session it forked, as when the machine goes down."""
        if self.process and self.process.poll() is None:
            for pid in [self.process.pid, *descendants(self.process.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait(timeout=30)


def descendants(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            parent = int(Path(stat).read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        if parent == pid:
            child = int(stat.split("/")[2])
            found += [child, *descendants(child)]
    return found


@pytest.fixture
def ssh(tmp_path):
    server = SSHServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run(cwd: Path, ssh: SSHServer, *command: str, env: dict | None = None, check: bool = True):
    full = {**os.environ, "HOME": str(ssh.home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(cwd), **(env or {})}
    full.pop("DVC_ROOT", None)
    if "MLFLOW_TRACKING_URI" not in (env or {}):
        full.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(command, cwd=cwd, env=full, capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def pushed(out: str) -> int:
    found = re.search(r"(\d+) files? pushed", out)
    return int(found.group(1)) if found else 0


def fetched(out: str) -> int:
    found = re.search(r"(\d+) files? fetched", out)
    return int(found.group(1)) if found else 0


def outputs(repo: Path) -> dict[str, str]:
    """Every file of every DVC output in dvc.lock, by its sha256."""
    import yaml

    paths = {out["path"] for stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"].values()
             for out in stage.get("outs", [])}
    files = {}
    for path in sorted(paths):
        for file in [repo / path] if (repo / path).is_file() else sorted((repo / path).rglob("*")):
            if file.is_file():
                files[str(file.relative_to(repo))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return files


def share(repo: Path, ssh: SSHServer, origin: Path, env: dict | None = None) -> int:
    """Clone A: its remote set, outputs pushed, the pipeline's state committed and pushed to origin."""
    run(repo, ssh, "bash", REMOTE, "set", ssh.url)
    count = pushed(run(repo, ssh, "bash", REMOTE, "push", env=env).stdout)
    run(repo, ssh, "git", "add", "-A")
    run(repo, ssh, "git", "commit", "-qm", "the study, its remote")
    run(origin.parent, ssh, "git", "init", "-q", "--bare", str(origin))
    run(repo, ssh, "git", "remote", "add", "origin", str(origin))
    run(repo, ssh, "git", "push", "-q", "origin", "HEAD:main")
    return count


def teammate(tmp: Path, ssh: SSHServer, origin: Path) -> Path:
    clone = tmp / "clone-b"
    run(tmp, ssh, "git", "clone", "-q", "-b", "main", str(origin), str(clone))
    run(clone, ssh, "bash", REMOTE, "set", ssh.url)  # the user name is personal: each clone sets it
    return clone


def test_outputs_pushed_from_one_clone_are_pulled_by_the_other(ssh, reproduced, tmp_path):
    repo = reproduced  # as a first `dvc repro` leaves it
    files_pushed = share(repo, ssh, tmp_path / "origin.git")
    assert files_pushed > 20
    assert "user" not in (repo / ".dvc/config").read_text() and "user = " in (repo / ".dvc/config.local").read_text()

    clone = teammate(tmp_path, ssh, tmp_path / "origin.git")
    assert not (clone / "results/titanic/mse").exists() and (clone / ".dvc/cache").resolve() != (repo / ".dvc/cache").resolve()
    out = run(clone, ssh, "bash", REMOTE, "pull").stdout
    assert fetched(out) == files_pushed, out
    print(f"pushed {files_pushed} files from A, fetched {fetched(out)} on B")
    assert outputs(clone) == outputs(repo)
    assert "Data and pipelines are up to date" in run(clone, ssh, "dvc", "status").stdout
    assert "Running stage" not in run(clone, ssh, "dvc", "repro").stdout


def experiments(repo: Path, ssh: SSHServer) -> dict[str, dict]:
    """`dvc exp show --json`: each named experiment's params and metrics."""
    found = {}
    for commit in json.loads(run(repo, ssh, "dvc", "exp", "show", "--json").stdout):
        for experiment in commit.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision["data"]
                found[revision["name"]] = {"params": data["params"]["params.yaml"]["data"]["variants"]["mse"],
                                           "metrics": data["metrics"]["metrics/titanic/mse.json"]["data"]}
    return found


def test_an_experiment_run_on_one_clone_reaches_the_other(ssh, reproduced, team, tmp_path):  # noqa: F811
    repo, tracking = reproduced, {"MLFLOW_TRACKING_URI": team.uri}
    run(repo, ssh, sys.executable, "-m", "pipeline", "publish", env=tracking)  # the reproduced study, on the server
    share(repo, ssh, tmp_path / "origin.git", env=tracking)
    for epochs in (3, 4):
        run(repo, ssh, "dvc", "exp", "run", "--queue", "-q", "--set-param", f"+variants.mse.epochs={epochs}")
    run(repo, ssh, "dvc", "exp", "run", "--run-all", "-j", "2", env=tracking)
    on_a = experiments(repo, ssh)
    assert sorted(e["params"]["epochs"] for e in on_a.values()) == [3, 4]
    assert set(run(repo, ssh, "dvc", "exp", "list", "--name-only").stdout.split()) == set(on_a)
    for name in on_a:
        run(repo, ssh, "bash", REMOTE, "exp", "push", "origin", name)
    runs_before = team.runs()

    clone = teammate(tmp_path, ssh, tmp_path / "origin.git")
    run(clone, ssh, "bash", REMOTE, "pull")
    for name in on_a:
        run(clone, ssh, "bash", REMOTE, "exp", "pull", "origin", name)
    on_b = experiments(clone, ssh)
    print(f"experiments seen on B: {sorted(on_b)}")
    assert on_b == on_a  # the same params and metrics, to the last digit
    shown = run(clone, ssh, sys.executable, "-m", "pipeline", "experiments").stdout  # docs/team.md's `make experiments`
    assert all(name in shown for name in on_b), shown

    name = next(n for n, e in on_a.items() if e["params"]["epochs"] == 3)
    run(clone, ssh, "dvc", "exp", "apply", name)
    run(clone, ssh, "bash", REMOTE, "pull")
    assert "Data and pipelines are up to date" in run(clone, ssh, "dvc", "status").stdout
    mse = json.loads((clone / "metrics/titanic/mse.json").read_text())
    assert mse == on_a[name]["metrics"]
    assert json.loads((clone / "results/titanic/mse/record.json").read_text())["config"]["training"]["epochs"] == 3

    published = run(clone, ssh, sys.executable, "-m", "pipeline", "publish", env=tracking).stdout
    assert "publish: 0 run(s) logged" in published, published
    runs = team.runs()
    assert len(runs) == len(runs_before)
    digests = [r.data.tags["pipeline.digest"] for r in runs if "pipeline.digest" in r.data.tags]
    assert len(digests) == len(set(digests)) == len(runs)  # each run once
    print(f"runs on the server: {len(runs)}, each digest once")


def big_file(path: Path, megabytes: int) -> None:
    with open(path, "wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1 << 20))


def one_error_line(done: subprocess.CompletedProcess, ssh: SSHServer) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("remote: error: ") and f"remote team (ssh://127.0.0.1:{ssh.port}{ssh.store})" in lines[0]
    return lines[0]


def test_ssh_server_stopped_mid_push_then_retried_and_a_refused_key(ssh, tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    run(a, ssh, "git", "init", "-q")
    run(a, ssh, "dvc", "init", "-q")
    big_file(a / "big.bin", 200)
    run(a, ssh, "dvc", "add", "-q", "big.bin")
    run(a, ssh, "bash", REMOTE, "set", ssh.url)
    digest = hashlib.md5((a / "big.bin").read_bytes()).hexdigest()
    final = ssh.store / "files/md5" / digest[:2] / digest[2:]

    env = {**os.environ, "HOME": str(ssh.home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    push = subprocess.Popen(["bash", REMOTE, "push"], cwd=a, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not glob.glob(f"{ssh.store}/files/md5/*/.*.tmp"):  # the upload has begun
        assert push.poll() is None and time.monotonic() < deadline, push.communicate()
        time.sleep(0.01)
    ssh.stop()
    out, err = push.communicate(timeout=300)
    line = one_error_line(subprocess.CompletedProcess(push.args, push.returncode, out, err), ssh)
    assert "run the same command again" in line
    assert not final.exists()  # the cut-short upload never took the object's name
    for stored in ssh.store.rglob("*"):  # what a later pull could accept is whole
        if stored.is_file() and not stored.name.startswith("."):
            assert hashlib.md5(stored.read_bytes()).hexdigest() == stored.parent.name + stored.name

    ssh.start()
    assert pushed(run(a, ssh, "bash", REMOTE, "push").stdout) == 1
    run(a, ssh, "git", "add", "-A")
    run(a, ssh, "git", "commit", "-qm", "big")
    b = tmp_path / "b"
    run(tmp_path, ssh, "git", "clone", "-q", str(a), str(b))
    run(b, ssh, "bash", REMOTE, "set", ssh.url)
    assert fetched(run(b, ssh, "bash", REMOTE, "pull").stdout) == 1
    assert hashlib.md5((b / "big.bin").read_bytes()).hexdigest() == digest

    # A key the server does not accept: one line naming the remote, nothing pulled.
    (b / "big.bin").unlink()
    run(b, ssh, "dvc", "cache", "dir", str(tmp_path / "empty-cache"))
    run(b, ssh, "bash", REMOTE, "set", ssh.url, env={"DVC_SSH_KEYFILE": str(ssh.wrong_key)})
    line = one_error_line(run(b, ssh, "bash", REMOTE, "pull", check=False), ssh)
    assert "Permission denied" in line and "ssh-add" in line
    assert not (b / "big.bin").exists()
