"""The real `dvc repro` on a small copy of the project in a temporary git repository."""
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import make_repo, sh, store_runs

pytestmark = pytest.mark.slow

def trained(out: str) -> set[str]:
    """'<dataset> <variant>' of every variant a train@ stage trained (the others it kept)."""
    return {" ".join(line.split()[1:3]).rstrip(":") for line in out.splitlines()
            if line.startswith("train ") and ": training (" in line}


def set_epochs(repo: Path, variant: str, epochs: int) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["variants"][variant]["epochs"] = epochs
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_tracks_every_variant_once_and_reruns_nothing(study_template, reproduced):
    repo, first = reproduced, study_template.output  # what the first `dvc repro` printed, and where it ended
    assert "publish: 6 run(s) logged" in first  # three variants, the report, the page across datasets, the sweep
    runs = store_runs(repo)
    assert sorted(run.info.run_name for run in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.params["data.source"] == "url" for run in runs if run.info.run_name != "comparison-report")
    for plot in ("figures/mse/loss_curve.png", "figures/mse/confusion_matrix.png", "history/mse/history.csv"):
        assert (repo / "plots/titanic" / plot).exists()

    second = sh(repo, "dvc", "repro")
    assert "Running stage" not in second
    assert len(store_runs(repo)) == 4

    # One variant's settings changed: that variant alone retrains (the dataset's stage keeps the
    # others); it, the new report and the page across datasets are logged.
    set_epochs(repo, "mse", 3)
    third = sh(repo, "dvc", "repro")
    assert "Running stage 'train@titanic'" in third and trained(third) == {"titanic mse"}
    assert "train@titanic: 1 variant(s) trained, 2 kept (inputs unchanged)" in third
    assert "publish: 3 run(s) logged, 3 already in MLflow" in third
    assert len(store_runs(repo)) == 6


def test_a_run_cache_restore_still_ends_in_mlflow(reproduced):
    repo = reproduced
    original = (repo / "params.yaml").read_text()
    set_epochs(repo, "mse", 3)
    sh(repo, "dvc", "repro")
    # The store is lost, then the old settings come back: mse alone trains again (a stage whose
    # outputs persist has no run-cache), and publishing still logs every run the store lacks.
    shutil.rmtree(repo / "mlartifacts")
    (repo / "mlflow.db").unlink()
    (repo / "params.yaml").write_text(original)
    out = sh(repo, "dvc", "repro")
    assert trained(out) == {"titanic mse"}
    assert "publish: 6 run(s) logged" in out
    runs = store_runs(repo)
    assert sorted(run.info.run_name for run in runs) == ["comparison-report", "mse", "nll_logsoftmax", "nll_relu"]
    mse = next(run for run in runs if run.info.run_name == "mse")
    assert mse.data.params["epochs"] == "2"


def test_single_stage_by_name(repo):
    out = sh(repo, "dvc", "repro", "train@titanic")
    assert "Running stage 'train@titanic'" in out and "Running stage 'report'" not in out
    assert trained(out) == {"titanic mse", "titanic nll_relu", "titanic nll_logsoftmax"}
    assert "NLLLoss expects log-probabilities" in out
    # Named, a variant trains whatever its inputs: the same bytes, so DVC has nothing to do.
    again = sh(repo, "python", "-m", "pipeline", "train", "titanic", "nll_relu")
    assert trained(again) == {"titanic nll_relu"} and "train@titanic: 1 variant(s) trained, 0 kept" in again
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status", "train@titanic")


def test_a_forced_rerun_writes_the_same_bytes_so_nothing_downstream_reruns(reproduced):
    """DVC outputs are a function of their inputs: no wall-clock time in what DVC hashes."""
    repo = reproduced
    lock = (repo / "dvc.lock").read_text()
    # Forced, the stage keeps every variant (their inputs are unchanged); with one variant's
    # inputs record gone, it trains that variant again, to the same bytes.
    out = sh(repo, "dvc", "repro", "-f", "train@titanic")
    assert "Running stage 'train@titanic'" in out and not trained(out)
    (repo / "results/titanic/mse/inputs.json").unlink()
    out = sh(repo, "dvc", "repro", "train@titanic")
    assert trained(out) == {"titanic mse"}
    assert (repo / "dvc.lock").read_text() == lock
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status")
    again = sh(repo, "dvc", "repro")
    assert "Running stage" not in again
    # When it trained is still known to MLflow, from beside the outputs.
    assert (repo / "logs" / "run-times" / "titanic" / "mse.json").exists()


def test_the_study_is_replicated_and_the_report_concludes(study_template, reproduced):
    repo, out = reproduced, study_template.output
    assert "4 replica(s)" in out and "report titanic: 3 variants against nll_logsoftmax" in out
    summary = yaml.safe_load((repo / "reports/titanic/summary.json").read_text())
    assert summary["seeds"] == 2 and summary["splits"] == 2
    assert summary["variants"]["nll_logsoftmax"]["verdict"] == "reference"
    runs = {run.info.run_name: run for run in store_runs(repo)}
    assert runs["nll_relu"].data.params["study.replicas"] == "4"
    assert runs["nll_relu"].data.tags["diagnoses"] == summary["variants"]["nll_relu"]["diagnoses"]
    metrics = sh(repo, "dvc", "metrics", "show")
    assert "val_accuracy_mean" in metrics


def outputs(repo: Path) -> dict[str, str]:
    """Every file the pipeline writes under DVC (data, results, metrics, plots, reports) and
    dvc.lock, each path -> its sha256."""
    import hashlib

    files = [path for folder in ("data", "results", "metrics", "plots", "reports") for path in (repo / folder).rglob("*")
             if path.is_file()] + [repo / "dvc.lock"]
    return {str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def test_another_cpu_s_dispatch_writes_the_same_bytes(study_template, tmp_path):
    """The template's study reproduced again in a new repository, under an environment asking
    every library for another CPU's code path (test_numerics.OTHER_CPU: torch's scalar kernels,
    MKL's SSE4.2 branch, OpenBLAS's oldest kernels, numpy's AVX-512 loops, two threads): the
    pinned numerics make every output and dvc.lock the same bytes. Unpinned, this machine's own
    dispatch and that one differ in the last bits of every trained number."""
    from .test_numerics import OTHER_CPU

    params = yaml.safe_load((study_template.repo / "params.yaml").read_text())
    other = make_repo(tmp_path / "other", params)
    sh(other, "dvc", "repro", env=OTHER_CPU)
    mine, theirs = outputs(study_template.repo), outputs(other)
    assert len(mine) > 40 and sorted(theirs) == sorted(mine)
    differ = sorted(path for path in mine if theirs[path] != mine[path])
    assert not differ, f"{len(differ)} of {len(mine)} files differ under another dispatch: {differ[:8]}"


def running(out: str, prefix: str = "train@") -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith(f"Running stage '{prefix}")}


def test_two_datasets_one_of_three_classes_and_what_an_edit_reruns(reproduced):
    """Titanic and wine (3 classes), three variants, 2 x 2 replicas: every variant on every
    dataset, the page across them; one variant's edit re-runs its trainings alone, one
    dataset's its own. Wine joins a reproduced Titanic study: its own stages alone run."""
    import json

    from .conftest import ROOT

    repo = reproduced
    shutil.rmtree(repo / "mlartifacts")  # published anew below, both datasets at once
    (repo / "mlflow.db").unlink()
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["datasets"]["wine"] = yaml.safe_load((ROOT / "params.yaml").read_text())["datasets"]["wine"]
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    variants = sorted(params["variants"])
    first = sh(repo, "dvc", "repro", "report")
    assert running(first) == {"train@wine"}  # Titanic's inputs are unchanged: kept as reproduced
    assert trained(first) == {f"wine {v}" for v in variants}
    assert all((repo / f"results/{d}/{v}/record.json").exists() for d in ("titanic", "wine") for v in variants)
    summary = json.loads((repo / "reports/across/summary.json").read_text())
    assert list(summary["datasets"]) == ["titanic", "wine"] and summary["datasets"]["wine"]["classes"] == 3
    assert [v["variant"] for v in summary["variants"]] == list(params["variants"])
    assert all(v["verdicts"].endswith("/2") or "/2," in v["verdicts"] for v in summary["variants"])
    # nll_relu is unsound, set apart: two sound variants are too few to rank, one is tested.
    assert summary["set_apart"] == {"nll_relu": summary["set_apart"]["nll_relu"]}
    assert summary["set_apart"]["nll_relu"].startswith("unsound pairing: NLLLoss expects log-probabilities")
    assert summary["ranks"] == {"sentence": "No ranks: Friedman's test needs 2 or more datasets and 3 or more "
                                            "variants (this study compares 2 on 2)."}
    assert [(row["variant"], row["datasets"]) for row in summary["against_reference"]] == [("mse", 2)]
    assert "before 6 datasets" in summary["wilcoxon"]
    record = json.loads((repo / "results/wine/mse/record.json").read_text())
    assert record["head"] == {"encoding": "onehot", "outputs": 3, "last_activation": "Softmax"}
    assert not (repo / "reports/across/critical_difference.png").exists()
    assert (repo / "reports/wine/intervals.png").exists()

    set_epochs(repo, "mse", 3)
    edited = sh(repo, "dvc", "repro", "report")
    assert running(edited, "") == {"train@titanic", "train@wine", "report"}
    assert trained(edited) == {"titanic mse", "wine mse"}

    params = yaml.safe_load(path.read_text())
    params["datasets"]["wine"]["validation_share"] = 0.25
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    again = sh(repo, "dvc", "repro", "report")
    assert running(again, "") == {"preprocess@wine", "train@wine", "report"}
    assert trained(again) == {f"wine {v}" for v in variants}

    # Published: an experiment per dataset with the same layout as Titanic's (whose names stay),
    # each dataset's champion registered under its name, the page across datasets a run of its own.
    sh(repo, "dvc", "repro", "publish")
    from mlflow import MlflowClient

    from pipeline.tracking import study_view, variant_runs

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    for dataset, classes in (("titanic", 2), ("wine", 3)):
        runs = store_runs(repo, f"{dataset}-loss-functions")
        assert sorted(r.info.run_name for r in runs) == sorted([*variants, "comparison-report"])
        assert {(r.data.tags["dataset"], r.data.params.get("data.classes")) for r in runs} - {(dataset, None)} == {
            (dataset, str(classes))}
        summary = json.loads((repo / f"reports/{dataset}/summary.json").read_text())
        champion = client.get_model_version_by_alias("titanic-survival" if dataset == "titanic" else dataset, "champion")
        assert champion.run_id == next(r.info.run_id for r in runs if r.info.run_name == summary["champion"])
    [overview] = store_runs(repo, "loss-functions-across-datasets")
    assert overview.info.run_name == "across-datasets" and overview.info.status == "FINISHED"
    wine_report = next(r for r in store_runs(repo, "wine-loss-functions") if r.info.run_name == "comparison-report")
    assert overview.data.tags["report.wine"] == wine_report.info.run_id
    assert overview.data.tags["verdicts.mse"] == next(v["verdicts"] for v in json.loads(
        (repo / "reports/across/summary.json").read_text())["variants"] if v["variant"] == "mse")
    assert {f.path for f in client.list_artifacts(overview.info.run_id)} >= {"comparison.md", "normalised.png"}
    across_summary = json.loads((repo / "reports/across/summary.json").read_text())
    assert overview.data.metrics["against.p_equivalent/mse"] == variant_runs.readable(
        across_summary["against_reference"][0]["p_equivalent"])
    assert overview.data.tags[study_view.CURRENT_TAG] == "yes"  # what the across view shows


def test_a_loss_of_your_own_as_docs_variants_md_writes_it_then_an_edit_retrains_exactly_its_variants(reproduced):
    """docs/variants.md's "A loss of your own", step by step as written, beside the project's own
    focal loss; then its file edited: `dvc repro` re-trains its variant alone, focal kept."""
    import re

    repo = reproduced
    doc = (Path(__file__).parents[1] / "docs/variants.md").read_text()
    section = doc[doc.index("## A loss of your own"):doc.index("## On K classes")]
    file = re.search(r"Write `(losses/[\w/]+\.py)`", section).group(1)
    code, line = (textwrap.dedent(block) for block in re.findall(r"```(?:python|yaml)\n(.*?)```", section, re.S))
    (repo / file).write_text(code)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    own = yaml.safe_load(line)  # the line as it sits under `variants:`
    params["variants"].update(own, focal={"loss": "losses.focal:FocalLoss", "wants": "logits",
                                           "last_activation": "none", "target_encoding": "index"})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (name,) = own
    module = own[name]["loss"].partition(":")[0]

    out = sh(repo, "dvc", "repro")
    assert trained(out) == {f"titanic {name}", "titanic focal"} and "train@titanic: 2 variant(s) trained, 3 kept" in out
    run = next(r for r in store_runs(repo) if r.info.run_name == name)
    assert run.data.params["wants"] == "logits" and run.data.params["loss"] == own[name]["loss"]
    digest = run.data.params[f"loss_code.{module}"]

    (repo / file).write_text((repo / file).read_text().replace("(1 + logits - true)", "(0.5 + logits - true)"))
    out = sh(repo, "dvc", "repro")
    assert trained(out) == {f"titanic {name}"} and "train@titanic: 1 variant(s) trained, 4 kept" in out
    assert f"train titanic {name}: training (its loss_code changed)" in out
    edited = next(r for r in store_runs(repo) if r.info.run_name == name and r.info.run_id != run.info.run_id)
    assert edited.data.params[f"loss_code.{module}"] != digest
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status")
