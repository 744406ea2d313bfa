"""The served model's parts on made-up and shipped data: raw rows to the network's input (the
same bytes as training's), refusals naming the column, probabilities, the evaluation's metrics."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException

from pipeline.core import config
from pipeline.data.splits import scaler, split_arrays
from pipeline.tracking import evaluation, served_model, served_spec

from .conftest import ROOT, free_port, make_repo, sh, small_params
from .test_datasets import TORGERSEN, prepare, torgersen_unseen


def test_raw_penguin_rows_become_exactly_what_training_fed_the_network(project):
    """Categorical island and sex one-hot as preprocessing did, an island the split's training
    rows never show zeroed (in validation too), scaled with the training part's scaler."""
    prepared, _ = prepare(project, "penguins")
    split = torgersen_unseen(prepared)
    table = served_spec.Table.read(config.load().dataset("penguins"), config.load().seed)
    rows = table.validation_rows(split)
    assert set(rows["island"][:10]) == {"Torgersen"} and "year" in rows.columns  # the file's columns, all
    spec = served_spec.preprocessing(table, split, scaler(split, 0))
    assert spec["zeroed"] == [TORGERSEN]
    np.testing.assert_array_equal(served_model.features(rows, spec), split_arrays(split, 0)["x_val"])
    types = {f["name"]: f["type"] for f in spec["features"]}
    assert types == {"island": "string", "bill_length_mm": "double", "bill_depth_mm": "double",
                     "flipper_length_mm": "double", "body_mass_g": "double", "sex": "string"}


@pytest.mark.parametrize("name, standardize", [("wine", True), ("titanic", False)])
def test_a_loader_s_table_and_raw_features_become_what_training_fed_the_network(project, name, standardize):
    """A scikit-learn loader's table (its own columns as features), and a variant trained on
    raw features (no scaler): the same bytes as training's input."""
    prepared, _ = prepare(project, name)
    table = served_spec.Table.read(config.load().dataset(name), config.load().seed)
    spec = served_spec.preprocessing(table, prepared, scaler(prepared, 0) if standardize else None)
    np.testing.assert_array_equal(served_model.features(table.validation_rows(prepared), spec),
                                  split_arrays(prepared, 0, standardize)["x_val"])


@pytest.mark.parametrize("variant, rule", [
    ("l1", "as_is"), ("mse", "as_is"), ("nll_relu", "softmax"), ("nll_logsoftmax", "softmax"),
    ("cross_entropy", "softmax"), ("kldiv_relu", "softmax"), ("kldiv_logsoftmax", "softmax"),
    ("cosine_embedding", "clipped"), ("bce_with_logits", "sigmoid"), ("square_loss", "clipped"),
    ("cross_entropy_unscaled", "softmax"),
])
def test_each_variant_s_outputs_are_read_as_its_loss_reads_them(variant, rule):
    from types import SimpleNamespace

    from pipeline.study.losses import head

    settings = config.load().variants[variant]
    for classes in (2, 3):
        shape = head(settings.loss, settings.target_encoding, settings.last_activation, classes)
        record = SimpleNamespace(head=shape, config=settings)
        assert served_spec.probability_rule(record) == rule


@pytest.fixture
def titanic(project):
    prepared, _ = prepare(project, "titanic")
    table = served_spec.Table.read(config.load().dataset("titanic"), config.load().seed)
    return table.validation_rows(prepared), served_spec.preprocessing(table, prepared, scaler(prepared, 0))


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows.assign(Age=np.nan), "column Age: no value in rows 0, 1, 2, 3, 4, ...; this model was trained"),
    (lambda rows: rows.assign(Fare=""), "column Fare: no value in rows 0, 1, 2, 3, 4, ..."),
    (lambda rows: rows.assign(Age="twenty-two"), "column Age: 'twenty-two' is not a number"),
    (lambda rows: rows.assign(Sex="M"), "column Sex: 'M' is not a known category (male, female; rows 0, 1,"),
    (lambda rows: rows.drop(columns="Pclass"), "column Pclass: missing (the model takes Pclass, Sex, Age, Fare)"),
])
def test_a_row_the_network_never_saw_the_like_of_is_refused_naming_its_column(titanic, change, message):
    rows, spec = titanic
    with pytest.raises(MlflowException) as caught:
        served_model.features(change(rows), spec)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"  # HTTP 400 when served
    assert message in caught.value.message


def test_categories_listed_in_params_match_whatever_their_case(titanic):
    rows, spec = titanic
    shouted = rows.assign(Sex=rows["Sex"].str.upper().radd(" "))
    np.testing.assert_array_equal(served_model.features(shouted, spec), served_model.features(rows, spec))


def test_outputs_become_probabilities_by_the_last_layer_s_rule():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    softmax = served_model.probabilities(logits, "softmax")
    np.testing.assert_allclose(softmax[1], [1 / 3] * 3)
    np.testing.assert_allclose(softmax[0], np.exp([2, 0, -1]) / np.exp([2, 0, -1]).sum())
    np.testing.assert_allclose(served_model.probabilities(np.log(softmax), "exp"), softmax)
    # One output: the second class's probability; the first's is what is left.
    np.testing.assert_allclose(served_model.probabilities(np.array([[0.0], [np.log(3)]]), "sigmoid"),
                               [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(served_model.probabilities(np.array([[0.8]]), "as_is"), [[0.2, 0.8]])
    # Scores regressing one-hot targets: clipped to [0, 1], normalised; a dead row is uniform.
    np.testing.assert_allclose(served_model.probabilities(np.array([[1.2, 0.5, -0.3], [0.0, 0.0, -1.0]]), "clipped"),
                               [[1 / 1.5, 0.5 / 1.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def test_labels_follow_the_study_s_rule_and_answers_name_their_columns():
    spec2 = {"rule": "sigmoid", "threshold": 0.0, "classes": ["died", "survived"], "label": "survived"}
    answer = served_model.answer(np.array([[-0.5], [0.0], [1.0]]), spec2)
    assert list(answer.columns) == ["p_survived", "survived"] and answer["survived"].tolist() == [0, 1, 1]
    spec3 = {"rule": "softmax", "threshold": 0.0, "classes": ["Adelie", "Chinstrap", "Gentoo"], "label": "species"}
    answer = served_model.answer(np.array([[0.0, 3.0, 1.0]]), spec3)
    assert list(answer.columns) == ["p_Adelie", "p_Chinstrap", "p_Gentoo", "species"]
    assert answer["species"].tolist() == ["Chinstrap"]


def test_expected_calibration_error_on_made_up_answers_with_a_known_value():
    # 10 rows all at confidence 0.8 of which 5 right: one bin, |0.5 - 0.8| = 0.3.
    p = np.tile([0.2, 0.8], (10, 1))
    y = np.array([1] * 5 + [0] * 5)
    assert evaluation.expected_calibration_error(p, y) == pytest.approx(0.3)
    # Two bins, half the rows each: at 0.95 all right (gap 0.05), at 0.55 3/4 right (gap 0.2): 0.125.
    p = np.array([[0.05, 0.95]] * 4 + [[0.45, 0.55]] * 4)
    y = np.array([1, 1, 1, 1, 1, 1, 1, 0])
    assert evaluation.expected_calibration_error(p, y) == pytest.approx((4 * 0.05 + 4 * 0.2) / 8)
    # Calibrated by construction: in the limit the error goes to 0.
    rng = np.random.default_rng(0)
    q = rng.uniform(0.5, 1.0, 200_000)
    y = (rng.uniform(size=q.size) < q).astype(int)
    assert evaluation.expected_calibration_error(np.stack([1 - q, q], axis=1), y) < 0.01


def test_the_evaluation_s_metrics_on_made_up_answers():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    scores = evaluation.metrics(p, p.argmax(axis=1), y)
    assert scores["accuracy"] == 0.75 and scores["roc_auc"] == 1.0  # every positive ranked above the negative
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    scores = evaluation.metrics(three, three.argmax(axis=1), np.array([0, 1, 2]))
    assert scores["accuracy"] == 1.0 and scores["roc_auc"] == 1.0
    assert evaluation.reliability_png(three, np.array([0, 1, 2]), "made up")[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.isna(evaluation.metrics(p[:2], np.array([0, 0]), np.array([0, 0]))["roc_auc"])


def test_the_alias_stays_for_experiments_launches_and_other_branches(tmp_path, monkeypatch):
    import subprocess

    from pipeline.tracking.publish import Launch

    def stays(dvc_exp=None, run_id=None):
        launch = Launch.__new__(Launch)  # no store needed for the rule
        launch.dvc_exp, launch.run_id = dvc_exp, run_id
        return launch.champion_stays()

    monkeypatch.chdir(tmp_path)
    assert stays() is None  # outside git: the workspace is the project's
    subprocess.run(["git", "init", "-q", "-b", "main"], check=True)
    assert stays() is None  # main, before its first commit
    assert stays(dvc_exp="lr-hi") == "published from the DVC experiment lr-hi"
    assert stays(run_id="abc") == "published by the `mlflow run` launch abc"
    subprocess.run(["git", "checkout", "-q", "-b", "feature"], check=True)
    assert stays() == "published from the git branch feature, not main"
    subprocess.run(["git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-q", "--allow-empty",
                    "-m", "one"], check=True)
    subprocess.run(["git", "checkout", "-q", "--detach"], check=True)
    assert stays() == "published from a detached HEAD, not main"
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))  # fails closed: the alias stays
    assert stays() == "git could not say which branch this is (unreadable: FileNotFoundError)"


# --- The real thing: a small study through `dvc repro`, its champions served on 127.0.0.1 ---

DOC = ROOT / "docs" / "serving.md"
DOC_PORT = "5001"


def doc_blocks() -> list[tuple[str, str, str | None]]:
    """docs/serving.md's commands in order: (language, code, the answer block shown after it)."""
    found = [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", DOC.read_text(), re.S)]
    return [(lang, code, found[i + 1][1] if i + 1 < len(found) and found[i + 1][0] in ("text", "json") else None)
            for i, (lang, code) in enumerate(found) if lang in ("python", "bash")]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Titanic (the shipped file) and penguins (3 species, categorical, NA), three variants,
    2 x 2 replicas, through a real `dvc repro` on main, published to the repository's store."""
    params = small_params(datasets=["titanic", "penguins"], **{"iris.alpha_count": 4, "iris.max_iter": 200})
    params["datasets"]["titanic"]["source"] = {"sha256": params["datasets"]["titanic"]["source"]["sha256"]}
    repo = make_repo(tmp_path_factory.mktemp("serving") / "repo", params)
    sh(repo, "dvc", "repro")
    return repo


class Server:
    """`mlflow models serve` (or the docs' block that starts it) in its own process group."""

    def __init__(self, repo: Path, script: str, port: int):
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(["bash", "-c", script], cwd=repo, env=env, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.process.stdout.read()}"
            try:
                if requests.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"{script} did not answer on {self.url} within 180 s")

    def post(self, rows) -> requests.Response:
        body = '{"dataframe_records": ' + rows.to_json(orient="records") + "}"  # NaN as null
        return requests.post(f"{self.url}/invocations", data=body, headers={"Content-Type": "application/json"},
                             timeout=60)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process.stdout.close()


def pipeline_answers(repo: Path, dataset: str, champion: str):
    """What the pipeline itself predicts for split 0's validation rows, and those rows as the
    file has them."""
    from pipeline.core.catalog import DatasetFiles
    from pipeline.data.preprocess import load_prepared
    from pipeline.study.losses import predict
    from pipeline.core.record import TrainingRecord
    from pipeline.tracking.variant_runs import load_model

    cwd = Path.cwd()
    os.chdir(repo)
    try:
        import torch

        record = TrainingRecord.load(champion, dataset)
        prepared = load_prepared(dataset)
        x = split_arrays(prepared, 0, record.scaler.model_dump() if record.scaler else None)["x_val"]
        with torch.no_grad():
            outputs = load_model(record)(torch.from_numpy(x))
        params = config.load()
        rows = served_spec.Table.read(params.dataset(dataset), params.seed).validation_rows(prepared)
        assert DatasetFiles(dataset).raw.read_bytes() == (ROOT / "data/shipped" / f"{dataset}.csv").read_bytes()
    finally:
        os.chdir(cwd)
    return rows, predict(outputs, record.head.last_activation).numpy(), outputs.numpy().astype(np.float64), record


def champion_of(repo: Path, dataset: str) -> str:
    return json.loads((repo / f"reports/{dataset}/summary.json").read_text())["champion"]


def same_shape(live: dict, shown: dict) -> None:
    """An answer the docs show, against the live one: the same keys, rows and refusal."""
    assert live.keys() == shown.keys(), (live, shown)
    if "predictions" in shown:
        assert [r.keys() for r in live["predictions"]] == [r.keys() for r in shown["predictions"]]
    else:
        assert live["error_code"] == shown["error_code"]
        assert live["message"].split("Error: ")[-1] == shown["message"].split("Error: ")[-1]


@pytest.mark.slow
def test_the_docs_commands_and_the_served_champions_answer_as_the_pipeline_does(study):
    port = str(free_port())
    servers = []
    try:
        for lang, code, shown in doc_blocks():
            code = code.replace(DOC_PORT, port)
            if lang == "python":
                out = sh(study, "python", "-c", code)
                if "signature" in code:  # the same columns and types whatever the study
                    assert out.strip() == shown.strip()
                else:
                    assert "p_survived" in out and "p_Adelie" in out and "species" in out
            elif "mlflow models serve" in code:
                servers.append(Server(study, code, int(port)))
            else:
                same_shape(json.loads(sh(study, "bash", "-c", code)), json.loads(shown))
        assert servers, "docs/serving.md starts no server"
        # Every validation row of split 0, every column as the shipped file has them.
        titanic = servers[0]
        rows, expected, outputs, record = pipeline_answers(study, "titanic", champion_of(study, "titanic"))
        answer = titanic.post(rows)
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])
        assert served["survived"].tolist() == expected.tolist()
        rule = served_spec.probability_rule(record)
        np.testing.assert_allclose(served["p_survived"], served_model.probabilities(outputs, rule)[:, 1], rtol=1e-6)
        print(f"titanic: {len(rows)} passengers served as the pipeline predicts them ({record.variant}, {rule})")
        for column, value, named in (("Age", "twenty-two", "column Age"), ("Sex", "M", "column Sex"),
                                     ("Fare", None, "column Fare")):
            refused = titanic.post(rows.head(2).assign(**{column: value}))
            assert refused.status_code == 400 and named in refused.json()["message"], refused.text

        penguins = Server(study, f"mlflow models serve -m models:/penguins@champion --env-manager local "
                                 f"-h 127.0.0.1 -p {(port := free_port())}", port)
        servers.append(penguins)
        rows, expected, outputs, record = pipeline_answers(study, "penguins", champion_of(study, "penguins"))
        answer = penguins.post(rows)
        assert answer.status_code == 200, answer.text
        served = pd.DataFrame(answer.json()["predictions"])
        assert served["species"].tolist() == [record.classes[i] for i in expected]
        p = served_model.probabilities(outputs, served_spec.probability_rule(record))
        np.testing.assert_allclose(served[[f"p_{c}" for c in record.classes]].to_numpy(), p, rtol=1e-6)
        refused = penguins.post(rows.head(1).assign(island="Atlantis"))
        assert refused.status_code == 400 and "column island: 'Atlantis' is not a known category" in refused.text
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
def test_a_queued_experiment_registers_a_version_but_moves_the_alias_only_once_applied_on_main(study):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")

    def alias() -> str:
        return str(client.get_model_version_by_alias("titanic-survival", "champion").version)

    before = alias()
    sh(study, "git", "add", "-A")
    sh(study, "git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-qm", "the study")
    sh(study, "dvc", "exp", "run", "--queue", "-q", "-n", "lr-hi", "--set-param", "train.lr=0.01")
    sh(study, "dvc", "exp", "run", "--run-all")
    versions = client.search_model_versions("name = 'titanic-survival'")
    made = [v for v in versions if v.tags.get("dvc.exp_name") == "lr-hi"]
    assert len(made) == 1, [v.tags for v in versions]
    assert made[0].tags["champion_alias"] == "not moved: published from the DVC experiment lr-hi"
    assert alias() == before
    # Applied on main and published (what `make repro` runs): the experiment's version, not a new one.
    sh(study, "dvc", "exp", "apply", "lr-hi")
    sh(study, "dvc", "repro")
    sh(study, "python", "-m", "pipeline", "publish")
    assert alias() == str(made[0].version) != before
    assert len(client.search_model_versions("name = 'titanic-survival'")) == len(versions)
    history = [(v.version, v.tags.get("dvc.exp_name", "main"), v.tags["variant"]) for v in
               sorted(client.search_model_versions("name = 'titanic-survival'"), key=lambda v: int(v.version))]
    print(f"titanic-survival versions (version, where from, variant): {history}; @champion {before} -> {alias()}")
