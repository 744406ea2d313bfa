"""fetch_titanic and preprocess_titanic on a loopback server and synthetic files."""
import codecs
import csv
import hashlib
import json
import math
import shutil

import numpy as np
import pytest
import yaml

from pipeline.core.errors import PipelineError
from pipeline.core.catalog import DatasetFiles

TITANIC = DatasetFiles("titanic")
from pipeline.data import fetch as fetch_titanic
from pipeline.data import preprocess as preprocess_titanic
from pipeline.data.splits import split_arrays

from .conftest import ROOT, titanic_csv


def test_download_checks_the_sha256_and_records_provenance(project, serve):
    body = titanic_csv(rows=50)
    url = serve({"/titanic.csv": body}) + "/titanic.csv"
    project.params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": hashlib.sha256(body).hexdigest()})
    fetch_titanic.main("titanic")
    assert TITANIC.raw.read_bytes() == body
    source = json.loads(TITANIC.source.read_text())
    assert source == {"source": "url", "address": url, "sha256": hashlib.sha256(body).hexdigest(),
                      "rows": 50, "bytes": len(body)}


def test_checksum_mismatch_fails_and_writes_nothing(project, serve):
    url = serve({"/titanic.csv": titanic_csv(rows=50)}) + "/titanic.csv"
    project.params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": "0" * 64})
    with pytest.raises(PipelineError, match="does not match params.yaml datasets.titanic.source.sha256"):
        fetch_titanic.main("titanic")
    assert not TITANIC.raw.exists() and not TITANIC.source.exists()


def test_a_download_that_stops_halfway_fails(project, serve):
    body = titanic_csv(rows=50)
    url = serve({"/titanic.csv": body}, lie_about_length=True) + "/titanic.csv"
    project.params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": hashlib.sha256(body).hexdigest()})
    with pytest.raises(PipelineError, match="download stopped"):
        fetch_titanic.main("titanic")
    assert not TITANIC.raw.exists()


NOTEBOOK_CSV = ROOT / "data" / "shipped" / "titanic.csv"
NOTEBOOK_SHA = hashlib.sha256(NOTEBOOK_CSV.read_bytes()).hexdigest()


def ship(url: str) -> None:
    """The project's shipped copy in the test's folder, as a copy of `url`."""
    shutil.copytree(ROOT / "data" / "shipped", "data/shipped")
    meta = json.loads(TITANIC.shipped_source.read_text())
    TITANIC.shipped_source.write_text(json.dumps({**meta, "url": url}))


def test_the_shipped_copy_is_the_notebooks_file():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    meta = json.loads((ROOT / TITANIC.shipped_source).read_text())
    assert NOTEBOOK_SHA == params["datasets"]["titanic"]["source"]["sha256"] == meta["sha256"]
    assert meta["url"] == params["datasets"]["titanic"]["source"]["url"] and meta["rows"] == 891
    assert len(NOTEBOOK_CSV.read_bytes().splitlines()) == 892


def test_unreachable_address_uses_the_shipped_copy(project, serve, capsys):
    url = serve({}) + "/titanic.csv"  # answers 404
    ship(url)
    project.params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": NOTEBOOK_SHA})
    fetch_titanic.main("titanic")
    assert TITANIC.raw.read_bytes() == NOTEBOOK_CSV.read_bytes()
    source = json.loads(TITANIC.source.read_text())
    assert source["source"] == "shipped" and source["rows"] == 891 and source["requested_url"] == url
    assert source["address"] == "data/shipped/titanic.csv" and source["sha256"] == NOTEBOOK_SHA
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "using the copy shipped in data/shipped" in lines[0]


@pytest.mark.parametrize("change", ["sha256", "url"])
def test_no_silent_substitute_when_params_ask_for_another_file(project, serve, change):
    url = serve({}) + "/titanic.csv"
    ship(url)
    project.params(**{"datasets.titanic.source.url": url + ("?other" if change == "url" else ""),
                      "datasets.titanic.source.sha256": "0" * 64 if change == "sha256" else NOTEBOOK_SHA})
    with pytest.raises(PipelineError) as caught:
        fetch_titanic.main("titanic")
    message = str(caught.value)
    assert "unreachable" in message and "the shipped copy data/shipped/titanic.csv" in message
    assert "nothing is substituted" in message and "\n" not in message
    assert not TITANIC.raw.exists() and not TITANIC.source.exists()


def test_online_and_offline_give_the_same_numbers_bit_for_bit(project, serve):
    from pipeline.core.catalog import VariantFiles
    from pipeline.study import train

    files = {"/titanic.csv": NOTEBOOK_CSV.read_bytes()}
    url = serve(files) + "/titanic.csv"
    ship(url)
    project.params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": NOTEBOOK_SHA, "train.epochs": 3})
    outputs = {}
    for mode in ("online", "offline"):
        if mode == "offline":
            files.clear()  # the address now answers 404
        fetch_titanic.main("titanic")
        assert json.loads(TITANIC.source.read_text())["source"] == ("url" if mode == "online" else "shipped")
        preprocess_titanic.main("titanic")
        train.main("titanic", "mse")
        mse = VariantFiles("mse", "titanic")
        outputs[mode] = [path.read_bytes() for path in (TITANIC.raw, TITANIC.prepared, TITANIC.meta,
                                                        mse.record, mse.model, mse.replicas)]
    assert outputs["online"] == outputs["offline"]


def prepare(project, body: bytes, **params):
    project.params(**params)
    TITANIC.raw.parent.mkdir(parents=True, exist_ok=True)
    TITANIC.raw.write_bytes(body)


@pytest.mark.parametrize("lower_case", [False, True])
def test_preprocess_keeps_the_seed_features_and_fits_the_scaler_on_train_only(project, lower_case):
    prepare(project, titanic_csv(rows=300, lower_case=lower_case))
    preprocess_titanic.main("titanic")
    data = split_arrays(preprocess_titanic.load_prepared("titanic"), 0)
    meta = json.loads(TITANIC.meta.read_text())
    assert meta["features"] == ["Pclass", "Sex", "Age", "Fare"]
    dropped = len(range(4, 300, 9))
    assert meta["rows_clean"] == 300 - dropped
    validation = math.ceil(0.2 * (300 - dropped))  # scikit-learn rounds the test share up
    assert meta["train_rows"] == len(data["y_train"]) == 300 - dropped - validation
    assert meta["splits"] == 2 and meta["split_random_states"] == [42, 43]
    assert data["x_train"].dtype == np.float32 and data["y_train"].dtype == np.int64
    # Standardized with the training split's statistics: exact on train, not on validation.
    assert np.allclose(data["x_train"].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data["x_train"].std(axis=0), 1, atol=1e-4)
    assert not np.allclose(data["x_val"].mean(axis=0), 0, atol=1e-3)
    assert set(np.unique(data["y_train"])) == {0, 1}


def test_same_seed_same_split(project):
    prepare(project, titanic_csv(rows=120))
    preprocess_titanic.main("titanic")
    first = TITANIC.prepared.read_bytes()
    preprocess_titanic.main("titanic")
    assert TITANIC.prepared.read_bytes() == first


@pytest.mark.parametrize("body,message", [
    (b"", "the file is empty"),
    (b"PassengerId,Survived,Pclass,Sex,Age\n1,0,3,male,22\n", "missing column(s) Fare"),
    (titanic_csv(rows=40).replace(b",male,", b",unknown,", 1), "column Sex has value(s) 'unknown'"),
    (titanic_csv(rows=40).replace(b",S\n", b"x,S\n", 1), "column Fare has non-numeric value"),
])
def test_bad_csv_is_one_clear_line(project, body, message):
    prepare(project, body)
    with pytest.raises(PipelineError) as caught:
        preprocess_titanic.main("titanic")
    assert message in str(caught.value) and "data/titanic/raw.csv" in str(caught.value)
    assert not TITANIC.prepared.exists() and not TITANIC.meta.exists()


def test_a_single_class_left_is_refused(project):
    body = b"Survived,Pclass,Sex,Age,Fare\n" + b"".join(b"0,3,male,30,8.0\n" for _ in range(20))
    prepare(project, body)
    with pytest.raises(PipelineError, match="holds one class"):
        preprocess_titanic.main("titanic")


def as_people_have_it(body: bytes, how: str) -> bytes:
    """The same table saved the ways spreadsheets and people save it."""
    text = body.decode().replace("Passenger, No. 3", "Passenger, Ö. 3")  # one accented letter
    if how == "windows-1252":
        return text.encode("cp1252")
    if how == "utf-8 with a byte-order mark":
        return codecs.BOM_UTF8 + text.encode()
    if how == "utf-16 tab-separated":
        return "\n".join("\t".join(next(csv.reader([line]))) for line in text.splitlines()).encode("utf-16")
    if how == "semicolons and decimal commas":
        rows = [next(csv.reader([line])) for line in text.splitlines()]
        return "\n".join(";".join(cell.replace(".", ",") if cell.replace(".", "").isdigit() else cell
                                  for cell in row) for row in rows).encode()
    if how == "Survived as True/False":
        lines = text.splitlines()
        flip = {"0": "False", "1": "True"}
        return "\n".join([lines[0]] + [",".join([l.split(",")[0], flip[l.split(",")[1]], *l.split(",")[2:]])
                                       for l in lines[1:]]).encode()
    if how == "blank lines at the end":
        return text.encode() + b"\n\n\n"
    raise ValueError(how)


ENCODINGS = {"windows-1252": "cp1252", "utf-8 with a byte-order mark": "utf-8-sig", "utf-16 tab-separated": "utf-16",
             "semicolons and decimal commas": "utf-8", "Survived as True/False": "utf-8",
             "blank lines at the end": "utf-8"}


@pytest.mark.parametrize("how", ENCODINGS)
def test_files_as_people_have_them_give_the_same_table(project, how):
    body = titanic_csv(rows=120)
    prepare(project, body)
    preprocess_titanic.main("titanic")
    expected = preprocess_titanic.load_prepared("titanic")
    assert json.loads(TITANIC.meta.read_text())["encoding"] == "utf-8"
    TITANIC.raw.write_bytes(as_people_have_it(body, how))
    preprocess_titanic.main("titanic")
    got = preprocess_titanic.load_prepared("titanic")
    assert all(np.array_equal(got[key], expected[key]) for key in expected)
    meta = json.loads(TITANIC.meta.read_text())
    assert meta["encoding"] == ENCODINGS[how]
    assert meta["delimiter"] == {"utf-16 tab-separated": "tabs", "semicolons and decimal commas": "semicolons"}.get(
        how, "commas")
