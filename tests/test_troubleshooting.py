"""Every row of docs/troubleshooting.md: one clear line, a non-zero exit, nothing half-written.

Each case runs the real command-line entry (`python -m pipeline ...`) in a small project.
"""
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.catalog import DatasetFiles, VariantFiles

from .conftest import ROOT, small_params, titanic_csv

TITANIC = DatasetFiles("titanic")

MSE = VariantFiles("mse", "titanic")

GOOD = titanic_csv(rows=120)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def one_clear_line(done: subprocess.CompletedProcess, expected: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert expected in errors[0], errors[0]


def write_params(**changes) -> None:
    params = small_params()
    for key, value in changes.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def raw(body: bytes) -> None:
    TITANIC.raw.parent.mkdir(parents=True, exist_ok=True)
    TITANIC.raw.write_bytes(body)


def no_age(body: bytes) -> bytes:
    lines = body.decode().splitlines()
    return ("\n".join([lines[0]] + [",".join(l.split(",")[:6] + [""] + l.split(",")[7:]) for l in lines[1:]])
            + "\n").encode()


DATA = {
    "empty file": (b"", "the file is empty"),
    "header only": (GOOD.splitlines()[0] + b"\n", "has a header but no data rows"),
    "an unknown delimiter": (GOOD.replace(b",", b":"), "is not separated by commas, semicolons, tabs, pipes"),
    "not a text file": (b"PK\x03\x04" + bytes(range(256)) * 4, "not a text file (it starts like a ZIP archive"),
    "binary with NUL bytes": (b"\x00\x01garbage" * 100, "not a text file (it holds NUL bytes)"),
    "missing column": (b"Survived,Pclass,Sex,Age\n0,3,male,22\n", "missing column(s) Fare"),
    "non-numeric age": (GOOD.replace(b",male,22", b",male,twenty-two", 1) if b",male,22" in GOOD
                        else GOOD.replace(b",male,", b",male,old", 1), "column Age has non-numeric value"),
    "non-numeric fare": (GOOD.replace(b",S\n", b"x,S\n", 1), "column Fare has non-numeric value"),
    "unknown sex": (GOOD.replace(b",female,", b",F,", 1), "column Sex has value(s) 'f'"),
    "every row dropped": (no_age(GOOD), "no row left after dropping rows with a missing value"),
    "single class": (b"Survived,Pclass,Sex,Age,Fare\n" + b"0,3,male,30,8.0\n" * 20, "holds one class"),
}


@pytest.mark.parametrize("case", DATA)
def test_bad_data(project, case):
    body, expected = DATA[case]
    write_params()
    raw(body)
    done = cli("preprocess", "titanic")
    one_clear_line(done, expected)
    assert "data/titanic/raw.csv" in done.stderr
    assert not TITANIC.prepared.exists() and not TITANIC.meta.exists()


@pytest.mark.parametrize("case,expected", [
    ("checksum mismatch", "does not match params.yaml datasets.titanic.source.sha256"),
    ("download stops halfway", "download stopped after"),
    ("unreachable, and params name another file", "is not what params.yaml asks for"),
])
def test_bad_download(project, serve, case, expected):
    shutil.copytree(ROOT / "data" / "shipped", "data/shipped")
    files = {} if case.startswith("unreachable") else {"/t.csv": GOOD}
    url = serve(files, lie_about_length=case == "download stops halfway") + "/t.csv"
    write_params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": "0" * 64 if case == "checksum mismatch"
                    else hashlib.sha256(GOOD).hexdigest()})
    one_clear_line(cli("fetch", "titanic"), expected)
    assert not TITANIC.raw.exists() and not TITANIC.source.exists()


PARAMS = {
    "unknown key": ({"train.epoch": 3}, "train.epoch: unknown key (allowed: batch_size, epochs, hidden_layers"),
    "a number written as text": ({"train.epochs": "3"}, "train.epochs: must be an integer, got '3'"),
    "unknown loss": ({"variants.mse.loss": "MSELos"}, "variants.mse.loss: unknown value 'MSELos'"),
    "unknown activation": ({"variants.mse.last_activation": "Softplus"}, "variants.mse.last_activation: unknown value"),
    "unknown target encoding": ({"variants.mse.target_encoding": "ordinal"}, "variants.mse.target_encoding: unknown"),
    "encoding the loss cannot take": ({"variants.mse.target_encoding": "index", "variants.mse.outputs": 2},
                                      "MSELoss cannot take 'index' targets"),
    "epochs of 0": ({"train.epochs": 0}, "train.epochs: must be >= 1, got 0"),
    "hidden size below 1": ({"variants.mse.hidden_size": -4}, "variants.mse.hidden_size: must be >= 1, got -4"),
    "lr of 0 or below": ({"train.lr": -0.1}, "train.lr: must be > 0, got -0.1"),
    "empty alpha range": ({"iris.alpha_count": 0}, "iris.alpha_count: must be >= 1, got 0"),
    "reversed alpha range": ({"iris.alpha_min": 10, "iris.alpha_max": 0.1}, "the alpha range is reversed"),
    "non-positive alpha": ({"iris.alpha_min": 0}, "iris.alpha_min: must be > 0, got 0"),
    "unknown sweep model": ({"iris.model": "svm"}, "iris.model: unknown value 'svm'"),
    "no seeds": ({"study.seeds": 0}, "study.seeds: must be >= 1, got 0"),
    "negative splits": ({"study.splits": -2}, "study.splits: must be >= 1, got -2"),
    "unknown reference": ({"study.reference": "mse2"}, "study.reference: no variant named 'mse2'"),
    "confidence of 1 or more": ({"study.confidence": 1.5}, "study.confidence: must be < 1, got 1.5"),
    "confidence of 0 or less": ({"study.confidence": 0}, "study.confidence: must be > 0, got 0"),
    "margin of 0 or less": ({"study.margin": 0}, "study.margin: must be > 0, got 0"),
    "margin of 1 or more": ({"study.margin": 1}, "study.margin: must be < 1, got 1"),
    "too few splits for the test": ({"study.splits": 1}, "study.splits: 1 split leaves the corrected test no "
                                                         "degrees of freedom"),
    "standardize not true or false": ({"variants.mse.standardize": "yes"},
                                      "variants.mse.standardize: must be true or false, got 'yes'"),
    "a learning-rate grid of one": ({"tuning.lr": [0.001]},
                                    "tuning.lr: must list two or more values to choose from, got 1"),
    "a learning-rate grid out of order": ({"tuning.lr": [0.01, 0.001]},
                                          "tuning.lr: must list distinct values in increasing order, got 0.01, 0.001"),
    "an inner share of 1": ({"tuning.inner_share": 1.0}, "tuning.inner_share: must be < 1, got 1.0"),
    "a loss of your own that does not say what it reads": (
        {"variants.mse.loss": "losses.focal:FocalLoss"},
        "variants.mse.wants: a loss of your own says what it reads: wants: one of logits, probabilities"),
    "a loss of your own outside losses/": ({"variants.mse.loss": "mylab.loss:Mine", "variants.mse.wants": "any"},
                                           "a loss of your own lives in a module under losses/"),
    "wants that a torch loss contradicts": ({"variants.mse.wants": "logits"},
                                            "variants.mse.wants: MSELoss reads any; leave wants out or say any"),
    "a loss argument of no kind": ({"variants.mse.loss_args": {"delta": None}},
                                   "variants.mse.loss_args.delta: must be a number, true or false, a name or a list"),
}


@pytest.mark.parametrize("name", ["mean squared", "mse/2", "mse@2", "-mse", "2mse"])
def test_a_variant_name_dvc_or_the_shell_cannot_carry(prepared, name):
    params = small_params()
    params["variants"][name] = params["variants"].pop("mse")
    params["report"]["compare"] = []
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = cli("train", "titanic", "nll_relu")
    one_clear_line(done, f"variants.{name!r}: a variant's name must start with a letter and hold only letters")


@pytest.mark.parametrize("case", PARAMS)
def test_bad_params_stop_every_stage_before_it_writes(prepared, case):
    changes, expected = PARAMS[case]
    write_params(**changes)
    for command in (["train", "titanic", "mse"], ["sweep-alpha"]):
        done = cli(*command)
        one_clear_line(done, expected)
        assert done.stderr.count("params.yaml:") == 1
    assert not MSE.results.exists() and not MSE.metrics.exists()


# A loss that params accept but that cannot train: (the mse variant's new settings, a module of your
# own under losses/ or None, the line). Each stops train@ before it trains or writes anything.
OWN = "import torch\nimport torch.nn.functional as F\n\n\n"
LOSSES_THAT_CANNOT_TRAIN = {
    "an argument the torch loss does not take": (
        {"loss": "HuberLoss", "loss_args": {"margin": 1.0}}, None,
        "variant mse: loss HuberLoss: loss_args {'margin': 1.0} refused (TypeError: HuberLoss.__init__() got an "
        "unexpected keyword argument 'margin')"),
    "a value the torch loss refuses": (
        {"loss": "CrossEntropyLoss", "last_activation": "none", "target_encoding": "index",
         "loss_args": {"label_smoothing": 2.0}}, None,
        "variant mse: loss CrossEntropyLoss: failed on a made-up batch"),
    "the study's reduction overridden": ({"loss_args": {"reduction": "sum"}}, None,
                                         "variant mse: loss MSELoss: loss_args.reduction: the study reduces"),
    "a module that does not import": ({"loss": "losses.mine:mine", "wants": "any"}, "import nowhere_to_be_found\n",
                                      "variant mse: loss losses.mine:mine: cannot import it (ModuleNotFoundError: "
                                      "No module named 'nowhere_to_be_found')"),
    "a module that fails as it imports": ({"loss": "losses.mine:mine", "wants": "any"}, "def mine(:\n",
                                          "variant mse: loss losses.mine:mine: building it failed (SyntaxError"),
    "a name the module does not have": ({"loss": "losses.mine:mien", "wants": "any"},
                                        OWN + "def mine(outputs, targets):\n    return (outputs - targets).abs().mean()\n",
                                        "variant mse: loss losses.mine:mien: losses.mine has no mien"),
    "a loss that is not one value": ({"loss": "losses.mine:mine", "wants": "any"},
                                     OWN + "def mine(outputs, targets):\n    return (outputs - targets).abs()\n",
                                     "variant mse: loss losses.mine:mine: gave (4, 1) on a batch of 4 rows, not one"),
    "a loss of the wrong shape": ({"loss": "losses.mine:mine", "wants": "logits", "last_activation": "none"},
                                  OWN + "def mine(logits, target):  # class indices, handed 0/1 floats\n"
                                  "    return -F.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).mean()\n",
                                  "variant mse: loss losses.mine:mine: failed on a made-up batch (4 rows, 1 "
                                  "output(s), float targets, 2 classes): RuntimeError: gather(): Expected dtype int"),
    "NaN on the first batch": ({"loss": "losses.mine:mine", "wants": "any"},
                               OWN + "def mine(outputs, targets):\n    return (outputs * 0).log().mean() * 0\n",
                               "variant mse: loss losses.mine:mine: gave nan on a made-up batch of finite outputs"),
    "no gradient": ({"loss": "losses.mine:mine", "wants": "any"},
                    OWN + "def mine(outputs, targets):\n    return (outputs - targets).abs().mean().detach()\n",
                    "variant mse: loss losses.mine:mine: its value has no gradient with respect to the outputs"),
    "wants that the last activation contradicts": (
        {"loss": "losses.mine:mine", "wants": "log_probabilities", "last_activation": "Sigmoid"},
        OWN + "def mine(outputs, targets):\n    return -(outputs * targets).sum(-1).mean()\n",
        "variant mse: wants log_probabilities: losses.mine:mine expects log-probabilities but the last activation "
        "Sigmoid gives probabilities; use LogSoftmax"),
}


@pytest.mark.parametrize("case", LOSSES_THAT_CANNOT_TRAIN)
def test_a_loss_that_cannot_train_is_one_line_before_anything_trains(prepared, case):
    settings, module, expected = LOSSES_THAT_CANNOT_TRAIN[case]
    params = small_params()
    params["variants"]["mse"].update(settings)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if module is not None:
        Path("losses").mkdir()
        Path("losses/__init__.py").write_text("")
        Path("losses/mine.py").write_text(module)
    one_clear_line(cli("train", "titanic"), expected)  # the stage as DVC runs it: every variant
    assert not Path("results").exists() and not Path("metrics").exists()


def test_all_params_errors_come_together(prepared):
    write_params(**{"train.epochs": 0, "train.lr": 0, "variants.mse.loss": "X", "iris.alpha_count": 0})
    line = cli("train", "titanic", "mse").stderr
    for key in ("train.epochs", "train.lr", "variants.mse.loss", "iris.alpha_count"):
        assert key in line


def test_three_mistakes_in_another_params_file_one_line(prepared):
    params = small_params()
    params["train"]["epochs"] = 0
    params["variants"]["mse"]["loss"] = "MSELos"
    params["study"]["reference"] = "nll_tanh"
    Path("bad.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = cli("--params", "bad.yaml", "train", "titanic", "l1")
    one_clear_line(done, "error: bad.yaml: train.epochs: must be >= 1, got 0; variants.mse.loss: unknown value 'MSELos' "
                         "(choose from L1Loss, MSELoss, ")
    assert "; study.reference: no variant named 'nll_tanh' (known: nll_relu, nll_logsoftmax, mse)" in done.stderr


def test_malformed_params_yaml(prepared):
    Path("params.yaml").write_text("seed: 42\ntrain: {epochs: 3\n")
    one_clear_line(cli("train", "titanic", "mse"), "params.yaml: line 3 is not valid YAML")


def test_a_batch_larger_than_the_data_works(prepared):
    write_params(**{"variants.mse.batch_size": 100_000})
    done = cli("train", "titanic", "mse")
    assert done.returncode == 0, done.stderr
    assert MSE.model.exists() and MSE.history.exists()


def test_unreachable_tracking_uri_keeps_training_results(prepared):
    assert cli("train", "titanic", "mse").returncode == 0
    assert cli("report").returncode == 1  # the other variants were never trained
    params = small_params(variants=["mse"])
    params["report"]["compare"] = []
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert cli("report").returncode == 0
    done = cli("publish", "mse", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
                                      "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    one_clear_line(done, "publishing to MLflow at http://127.0.0.1:9 failed")
    assert "training results are kept" in done.stderr
    assert MSE.model.exists()


@contextlib.contextmanager
def read_only(folder: Path):
    """A folder even root cannot write: the immutable attribute, else a read-only mount."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    pytest.skip("neither chattr +i nor a read-only mount works here")


def test_a_read_only_output_folder(prepared):
    folder = MSE.metrics.parent  # metrics/titanic
    folder.mkdir(parents=True, exist_ok=True)
    with read_only(folder):
        done = cli("train", "titanic", "mse")
    one_clear_line(done, f"error: {folder}: ")
    # Nothing of the stage's outputs was written, not even those in writable folders.
    assert not list(folder.iterdir()) and not MSE.results.exists() and not MSE.history.exists()
