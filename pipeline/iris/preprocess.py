"""Stage preprocess_iris: Setosa against Versicolor on sepal and petal length, as the seed did.

A 70/30 split with the seed; the scaler is fitted on the training split only.
"""
from __future__ import annotations

import json

import numpy as np

from ..core import atomic, config
from ..core.errors import PipelineError
from ..core.catalog import IRIS_META, IRIS_PREPARED, IRIS_RAW, IRIS_SOURCE

FEATURES = ("sepal_length", "petal_length")
CLASSES = (0, 1)  # setosa, versicolor


def read(path=IRIS_RAW) -> tuple[np.ndarray, np.ndarray]:
    try:
        header = path.read_text().splitlines()[0].split(",")
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro fetch_iris` first") from None
    except (ValueError, IndexError) as exc:
        raise PipelineError(f"{path}: not a numeric CSV with a header ({exc})") from None
    missing = [c for c in (*FEATURES, "species") if c not in header]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}")
    x = table[:, [header.index(c) for c in FEATURES]]
    y = table[:, header.index("species")].astype(np.int64)
    keep = np.isin(y, CLASSES)
    return x[keep], y[keep]


def main(params_path: str = config.PARAMS_FILE) -> None:
    from sklearn.model_selection import train_test_split

    params = config.load(params_path)
    x, y = read()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=params.iris.test_size,
                                                        random_state=params.seed)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    arrays = {"x_train": (x_train - mean) / scale, "y_train": y_train,
              "x_test": (x_test - mean) / scale, "y_test": y_test,
              "scaler_mean": mean, "scaler_scale": scale}
    source = json.loads(IRIS_SOURCE.read_text()) if IRIS_SOURCE.exists() else {}
    with atomic.Outputs() as out:
        out.file(IRIS_PREPARED, atomic.npz_bytes(arrays))
        out.json(IRIS_META, {"features": list(FEATURES), "classes": ["setosa", "versicolor"],
                              "train_rows": len(y_train), "test_rows": len(y_test),
                              "seed": params.seed, "test_size": params.iris.test_size,
                              "scaler_fitted_on": "train", "source": source})
    print(f"preprocess_iris: {len(y_train)} train, {len(y_test)} test rows")


def load_prepared(path=None) -> dict:
    return atomic.read_npz(path or IRIS_PREPARED, "preprocess_iris")
