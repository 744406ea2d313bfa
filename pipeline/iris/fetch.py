"""Stage fetch_iris: scikit-learn's bundled Iris (no network), as a CSV with provenance."""
from __future__ import annotations

import hashlib

from ..core import atomic, config
from ..core.catalog import IRIS_RAW, IRIS_SOURCE

COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width", "species")


def main(params_path: str = config.PARAMS_FILE) -> None:
    config.load(params_path)  # a broken params.yaml stops every stage, this one too
    import sklearn
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = [",".join(COLUMNS)] + [
        ",".join(f"{v:g}" for v in row) + f",{int(label)}" for row, label in zip(iris.data, iris.target)]
    data = ("\n".join(lines) + "\n").encode()
    with atomic.Outputs() as out:
        out.file(IRIS_RAW, data)
        out.json(IRIS_SOURCE, {"source": "scikit-learn", "address": "sklearn.datasets.load_iris",
                                "version": sklearn.__version__, "rows": len(iris.target),
                                "sha256": hashlib.sha256(data).hexdigest(),
                                "classes": list(map(str, iris.target_names))})
    print(f"fetch_iris: {len(iris.target)} rows from scikit-learn {sklearn.__version__}")
