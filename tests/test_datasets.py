"""Every dataset of params.yaml through fetch@ and preprocess@: the loaders, the encodings, bad entries."""
import hashlib
import json
import shutil

import numpy as np
import pytest

from pipeline.core import config
from pipeline.core.catalog import DatasetFiles
from pipeline.data import fetch, preprocess
from pipeline.core.errors import PipelineError
from pipeline.data.splits import split_arrays

from .conftest import ROOT


def prepare(project, name: str, **overrides) -> tuple[dict, dict]:
    project.params(datasets=sorted({"titanic", name}), **overrides)
    shutil.copytree(ROOT / "data" / "shipped", project.path / "data" / "shipped", dirs_exist_ok=True)
    fetch.main(name)
    preprocess.main(name)
    files = DatasetFiles(name)
    return preprocess.load_prepared(name), json.loads(files.meta.read_text())


@pytest.mark.parametrize("name, rows, columns, classes", [
    ("breast_cancer", 569, 30, ["malignant", "benign"]),
    ("wine", 178, 13, ["class_0", "class_1", "class_2"]),
    ("digits", 1797, 64, [str(d) for d in range(10)]),
])
def test_a_scikit_learn_loader_gives_its_table_and_its_class_names(project, name, rows, columns, classes):
    from sklearn import datasets

    prepared, meta = prepare(project, name)
    bunch = getattr(datasets, f"load_{name}")()
    assert prepared["x"].shape == (rows, columns) and meta["classes"] == classes
    # Rows, values and labels as the loader has them (no row dropped, labels its indices).
    np.testing.assert_array_equal(prepared["x"], bunch.data)
    np.testing.assert_array_equal(prepared["y"], bunch.target)
    source = json.loads(DatasetFiles(name).source.read_text())
    assert source["source"] == "sklearn" and source["rows"] == rows
    assert source["sha256"] == meta["sha256"] == hashlib.sha256(DatasetFiles(name).raw.read_bytes()).hexdigest()
    assert meta["majority_share"] == pytest.approx(np.bincount(bunch.target).max() / rows)


def test_penguins_from_the_shipped_copy_drop_missing_rows_and_one_hot_island_and_sex(project):
    prepared, meta = prepare(project, "penguins")
    assert json.loads(DatasetFiles("penguins").source.read_text())["source"] == "shipped"
    assert (meta["rows_read"], meta["rows_dropped"], meta["rows_clean"]) == (344, 11, 333)
    assert meta["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert meta["features"] == ["island=Biscoe", "island=Dream", "island=Torgersen", "bill_length_mm",
                                "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    x = prepared["x"]
    np.testing.assert_array_equal(x[:, :3].sum(axis=1), 1.0)  # one island each
    assert set(np.unique(x[:, 7])) == {0.0, 1.0}              # sex: 1 for male, the second category
    np.testing.assert_array_equal(prepared["onehot"], [True, True, True, False, False, False, False, True])
    # The first row of the file: Adelie, Torgersen, 39.1, 18.7, 181, 3750, male.
    np.testing.assert_array_equal(x[0], [0, 0, 1, 39.1, 18.7, 181, 3750, 1])
    assert prepared["y"][0] == 0 and np.bincount(prepared["y"]).tolist() == [146, 68, 119]


TORGERSEN = 2  # penguins' island=Torgersen column


def torgersen_unseen(prepared: dict) -> dict:
    """Penguins with one split whose training rows never show Torgersen, its first 10
    validation rows all from there."""
    x = prepared["x"]
    others, theirs = np.flatnonzero(x[:, TORGERSEN] == 0), np.flatnonzero(x[:, TORGERSEN] == 1)
    return {**prepared, "train_index": others[None, :200],
            "val_index": np.concatenate([theirs[:10], others[200:230]])[None, :]}


def test_a_category_only_validation_rows_hold_is_unknown_to_its_split(project):
    """The encoding is fitted on the split's training rows: a category they never show is a
    column of zeros, in validation too, and scaling leaves it zero."""
    prepared, _ = prepare(project, "penguins")
    torgersen = TORGERSEN
    split = torgersen_unseen(prepared)
    arrays = split_arrays(split, 0)
    assert not arrays["x_train"][:, torgersen].any() and not arrays["x_val"][:, torgersen].any()
    # A category the training rows show is encoded and scaled as usual.
    assert arrays["x_val"][:, 0].std() > 0 and abs(arrays["x_train"][:, 0].mean()) < 1e-6


def test_titanic_s_sex_is_one_column_for_female_as_the_notebook_coded_it(project):
    prepared, meta = prepare(project, "titanic")
    assert meta["features"] == ["Pclass", "Sex", "Age", "Fare"] and meta["classes"] == ["died", "survived"]
    assert meta["categorical"] == {"Sex": ["male", "female"]}
    assert (meta["rows_clean"], meta["rows_dropped"]) == (714, 177)
    # The notebook's first passenger: 3rd class, male, 22, 7.25, died.
    np.testing.assert_array_equal(prepared["x"][0], [3, 0, 22, 7.25])
    assert prepared["y"][0] == 0


@pytest.mark.parametrize("change, expected", [
    ({"datasets.wine.source": {"sklearn": "diabetes"}},
     "datasets.wine.source.sklearn: unknown value 'diabetes' (choose from breast_cancer, wine, digits, iris)"),
    ({"datasets.wine.source": {"sklearn": "wine", "sha256": "0" * 64}},
     "datasets.wine.source: a scikit-learn loader takes no url, keel or sha256"),
    ({"datasets.wine.source": {}}, "datasets.wine.source: a file's sha256 (and its url, if it has one), a KEEL "
                                   "table's"),
    ({"datasets.penguins.source.sha256": "F204"}, "datasets.penguins.source.sha256: must be 64 hexadecimal digits"),
    ({"datasets.penguins.target": None}, "datasets.penguins: a file's target and features must be named"),
    ({"datasets.penguins.categorical": {"colour": "auto"}}, "datasets.penguins: categorical colour not among the features"),
    ({"datasets.penguins.categorical": {"sex": ["male"]}},
     "datasets.penguins.categorical.sex: must be auto or a list of two or more distinct categories"),
    ({"datasets.penguins.features": ["species", "island"]}, "datasets.penguins: the target species is among the features"),
    ({"datasets.penguins.features": ["island", "sex", "island"]},
     "datasets.penguins: feature(s) island listed more than once"),
    ({"datasets": {"red wine": {"source": {"sklearn": "wine"}}}},
     "datasets.'red wine': a dataset's name must start with a letter and hold only letters, digits"),
    ({"datasets.penguins.missing": "impute"}, "datasets.penguins.missing: unknown value 'impute' (choose from drop)"),
    ({"datasets.penguins.validation_share": 1.5}, "datasets.penguins.validation_share: must be < 1"),
    ({"datasets.penguins.colour": "red"}, "datasets.penguins.colour: unknown key (allowed: categorical, class_names, "
                                          "features, max_rows, missing, registered_as, source, target, "
                                          "validation_share)"),
    ({"datasets.penguins.source.colour": "red"}, "datasets.penguins.source.colour: unknown key (allowed: keel, sha256, "
                                                 "sklearn, timeout, url)"),
])
def test_a_bad_dataset_entry_is_one_line_naming_its_key(change, expected):
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in change.items():
        *path, leaf = key.split(".")
        node = raw
        for part in path:
            node = node[part]
        node[leaf] = value
    with pytest.raises(PipelineError) as caught:
        config.parse(raw)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_no_dataset_is_required_by_name():
    """Titanic is the notebook's table, not the code's: a study without it is a study."""
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    del raw["datasets"]["titanic"]
    with pytest.raises(PipelineError, match=r"report.plotted: no dataset named 'titanic' \(known: penguins, "):
        config.parse(raw)  # dvc.yaml's plots name it through params: moved with it, or refused
    raw["report"]["plotted"] = "wine"
    assert "titanic" not in config.parse(raw).datasets


@pytest.mark.parametrize("change, expected", [
    ({"datasets.penguins.target": "Species_"}, "data/penguins/raw.csv: missing column(s) Species_ "
                                               "(datasets.penguins.target)"),
    ({"datasets.penguins.features": ["island", "beak"], "datasets.penguins.categorical": {"island": "auto"}},
     "data/penguins/raw.csv: missing column(s) beak (datasets.penguins.features)"),
    ({"datasets.penguins.categorical": {"island": ["Biscoe", "Dream"], "sex": "auto"}},
     "data/penguins/raw.csv: column island has value(s) 'torgersen'; expected Biscoe or Dream "
     "(datasets.penguins.categorical.island)"),
])
def test_columns_the_file_does_not_have_are_named_with_their_key(project, change, expected):
    files = DatasetFiles("penguins")
    with pytest.raises(PipelineError) as caught:
        prepare(project, "penguins", **change)
    assert expected in str(caught.value)
    assert not files.prepared.exists() and not files.meta.exists()


def test_a_shipped_copy_that_is_not_the_asked_for_sha256_is_refused(project):
    files = DatasetFiles("penguins")
    with pytest.raises(PipelineError) as caught:
        prepare(project, "penguins", **{"datasets.penguins.source.sha256": "0" * 64})
    assert ("the shipped copy data/shipped/penguins.csv (of no address, sha256 f204db2c" in str(caught.value)
            and "datasets.penguins.source.sha256 " + "0" * 64 in str(caught.value))
    assert not files.raw.exists() and not files.source.exists()


def own_table(project, rows: list[str], **entry) -> None:
    """A user's own CSV as a shipped file (by its sha256), the study's only dataset."""
    body = ("\n".join(rows) + "\n").encode()
    shipped = project.path / "data" / "shipped"
    shipped.mkdir(parents=True, exist_ok=True)
    (shipped / "mine.csv").write_bytes(body)
    (shipped / "mine.json").write_text(json.dumps({"origin": "a test", "sha256": hashlib.sha256(body).hexdigest(),
                                                   "rows": len(rows) - 1, "what": "a user's own table"}))
    project.params(**{"datasets": [], "datasets.mine": {
        "source": {"sha256": hashlib.sha256(body).hexdigest()}, "target": "label", "features": ["a", "b"], **entry}})


@pytest.mark.parametrize("rows, expected", [
    # A measurement, not a class: 120 distinct values in 120 rows.
    (["a,b,label"] + [f"{i},{i % 7},{i * 1.5 + 0.25}" for i in range(120)],
     "column label holds non-integer numbers (0.25): not class labels"),
    (["a,b,label"] + [f"{i},{i % 7},{1000 + i}" for i in range(120)],
     "column label holds 120 distinct values in 120 rows: not class labels"),
    # Six rows: two validation rows per split for two classes.
    (["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(6)],
     "datasets.mine: 2 validation row(s) per split (6 clean rows x validation_share 0.2) for 2 classes: a split "
     "cannot judge a class it holds fewer than 2 rows of; the study needs at least 4 validation rows per split "
     "(about 20 clean rows at this share)"),
])
def test_a_table_the_study_cannot_judge_is_refused_before_training(project, rows, expected):
    own_table(project, rows)
    fetch.main("mine")
    with pytest.raises(PipelineError) as caught:
        preprocess.main("mine")
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert not DatasetFiles("mine").prepared.exists() and not DatasetFiles("mine").meta.exists()


def test_a_table_with_enough_rows_passes_the_check(project):
    own_table(project, ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(300)])
    fetch.main("mine")
    preprocess.main("mine")
    assert json.loads(DatasetFiles("mine").meta.read_text())["val_rows"] == 60
