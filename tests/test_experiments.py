"""DVC experiments on a small copy of the project: the way back that docs/mlflow.md gives, and
`python -m pipeline experiments`, the study's headline per experiment in 120 columns."""
import json
import os
import re
import subprocess
import sys

import pytest

from pipeline.study.experiments import WIDTH, render

from .conftest import ROOT, sh

WAY_BACK_LEAD = "**The way back from an experiment.**"


def way_back() -> list[str]:
    """The commands of the code block after the lead in docs/mlflow.md: the test runs what it says."""
    text = (ROOT / "docs" / "mlflow.md").read_text()
    assert WAY_BACK_LEAD in text, f"docs/mlflow.md has no {WAY_BACK_LEAD}"
    block = re.search(r"```bash\n(.*?)```", text.split(WAY_BACK_LEAD, 1)[1], re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def go_back(repo) -> None:
    for command in way_back():
        sh(repo, "bash", "-c", command)


def assert_clean(repo) -> None:
    assert sh(repo, "git", "status", "--porcelain") == ""
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status")


def experiment(repo, name: str, *sets: str) -> None:
    sh(repo, "dvc", "exp", "run", "-n", name, *[arg for s in sets for arg in ("--set-param", s)])


@pytest.mark.slow
def test_the_documented_way_back_leaves_git_and_dvc_clean(reproduced):
    repo = reproduced
    experiment(repo, "mse-e3", "+variants.mse.epochs=3")
    assert sh(repo, "git", "status", "--porcelain")  # the experiment's params, lock and metrics
    go_back(repo)
    assert_clean(repo)
    # After `dvc exp apply` too, and the experiment stays where DVC shows it.
    sh(repo, "dvc", "exp", "apply", "mse-e3")
    assert "epochs: 3" in (repo / "params.yaml").read_text()
    go_back(repo)
    assert_clean(repo)
    assert "mse-e3" in sh(repo, "dvc", "exp", "show", "--no-pager", "--csv")


@pytest.mark.slow
def test_the_way_back_in_a_fresh_clone_whose_cache_lacks_the_commit_s_outputs(reproduced, tmp_path):
    """A clone without a remote holds git's files only: an experiment computes the commit's
    outputs just for itself, and `dvc exp apply HEAD` would remove the workspace's outputs, then
    fail. The documented way back removes nothing, computes what the cache lacks, and ends
    clean; the experiment's own outputs stay in the cache."""
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(reproduced), str(clone))
    experiment(clone, "mse-e3", "+variants.mse.epochs=3")
    outputs = ["results/titanic/mse/record.json", "reports/titanic/comparison.md", "plots/titanic/figures"]
    assert all((clone / path).exists() for path in outputs)
    for command in way_back():
        out = sh(clone, "bash", "-c", command)
        assert "the cache lacks" in out and "results/titanic" in out, out
    assert_clean(clone)
    assert all((clone / path).exists() for path in outputs)
    for path in ("dvc.lock", "metrics/titanic/mse.json", "plots/titanic/history/mse/history.csv"):
        assert (clone / path).read_bytes() == (reproduced / path).read_bytes(), path
    assert "mse-e3" in sh(clone, "dvc", "exp", "show", "--no-pager", "--csv")


def table(out: str) -> dict[tuple[str, str], str]:
    """{(column, variant): cell} from every block of the printed table."""
    cells, names = {}, None
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["variant"]:
            names = words[1:]
        elif not words:
            names = None
        elif names:
            cells.update({(name, words[0]): cell for name, cell in zip(names, words[1:])})
    return cells


def metric(repo, rev: str, variant: str) -> str:
    shown = sh(repo, "git", "show", f"{rev}:metrics/titanic/{variant}.json")
    return f"{json.loads(shown)['val_accuracy_mean']:.3f}"


@pytest.mark.slow
def test_experiments_fit_in_120_columns_and_show_each_experiments_metrics(reproduced):
    repo = reproduced
    experiment(repo, "mse-e3", "+variants.mse.epochs=3")
    go_back(repo)
    experiment(repo, "lr-big", "train.lr=0.01")
    out = sh(repo, sys.executable, "-m", "pipeline", "experiments")
    print(out)
    assert all(len(line) <= WIDTH for line in out.splitlines()), out
    assert "mse-e3: variants.mse.epochs=3" in out and "lr-big: train.lr=0.01" in out
    refs = dict(line.split()[::-1] for line in sh(repo, "git", "for-each-ref", "--format=%(objectname) %(refname)",
                                                  "refs/exps").splitlines())
    revs = {ref.rpartition("/")[2]: sha for ref, sha in refs.items()}
    branch = sh(repo, "git", "branch", "--show-current").strip()
    shown = table(out)
    variants = sorted({variant for _, variant in shown})
    assert variants == ["mse", "nll_logsoftmax", "nll_relu"]
    for variant in variants:
        assert shown[(branch, variant)] == metric(repo, "HEAD", variant)
        assert shown[("workspace", variant)] == metric(repo, revs["lr-big"], variant)  # lr-big is applied
        for name in ("mse-e3", "lr-big"):
            assert shown[(name, variant)] == metric(repo, revs[name], variant), (name, variant)
    assert shown[("mse-e3", "mse")] != shown[(branch, "mse")]  # a third epoch moved something


def test_many_experiments_wrap_into_blocks_of_120_columns():
    def rev(name, epochs, accuracy):
        return {"rev": f"{name:0<40}", "name": name, "data": {
            "params": {"params.yaml": {"data": {"datasets": {"titanic": {}},
                                                "variants": {"mse": {"epochs": epochs}, "l1": {}}}}},
            "metrics": {"metrics/titanic/mse.json": {"data": {"val_accuracy_mean": accuracy, "diagnoses": "ok 4/4"}}}}}

    experiments = [{"name": f"experiment-{i}", "revs": [rev(f"experiment-{i}", i, 0.5 + i / 100)]} for i in range(20)]
    baseline = rev("main", 2, 0.8)
    shown = [{**rev("workspace", 2, 0.8), "rev": "workspace", "name": None}, {**baseline, "experiments": experiments}]
    lines = render(shown)
    assert all(len(line) <= WIDTH for line in lines)
    assert "experiment-3: variants.mse.epochs=3" in lines
    headers = [line for line in lines if line.startswith("variant")]
    assert len(headers) > 1 and headers[0].split()[1:3] == ["workspace", "main"]
    assert sum(len(h.split()) - 1 for h in headers) == 22  # every column once
    rows = [line for line in lines if line.startswith("mse ")]
    assert rows[0].split()[1:4] == ["0.800", "0.800", "0.500"]
    assert all(line.split()[1:] == ["-"] * (len(line.split()) - 1) for line in lines if line.startswith("l1 "))


def cli(cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "experiments"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("where", ["not a repository", "no metrics yet"])
def test_nothing_to_show_is_one_line(tmp_path, where):
    if where == "no metrics yet":
        sh(tmp_path, "git", "init", "-q")
        sh(tmp_path, "dvc", "init", "-q")
    done = cli(tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert ("not inside of a DVC repository" if where == "not a repository" else "nothing to show") in errors[0]
