"""Stage fetch_titanic: the seed's CSV from its address, or the copy shipped in the repository.

When the address cannot be reached (offline machines, many classrooms) the shipped copy, the
same bytes, is used, so online and offline give the same numbers; if params.yaml names another
address or checksum, nothing is substituted. Writes the bytes and a provenance record (source,
address, sha256, rows) that follows the data into every MLflow run.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import sys
import urllib.error
import urllib.request

from .. import atomic, config
from ..errors import PipelineError
from ..text import require_text
from ..catalog import TITANIC_RAW as RAW
from ..catalog import TITANIC_SHIPPED as SHIPPED
from ..catalog import TITANIC_SHIPPED_SOURCE as SHIPPED_SOURCE
from ..catalog import TITANIC_SOURCE as SOURCE


def download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        try:
            return response.read()
        except http.client.IncompleteRead as exc:
            raise PipelineError(f"{url}: download stopped after {len(exc.partial)} of "
                                f"{response.headers.get('Content-Length')} bytes; run again") from None


def shipped_copy(url: str, sha256: str, reason) -> bytes:
    """The copy shipped in the repository, but only if it is what params.yaml asks for."""
    restore = "restore it with `git checkout data/shipped`"
    try:
        record = SHIPPED_SOURCE.read_bytes()
        data = SHIPPED.read_bytes()
    except FileNotFoundError as exc:
        raise PipelineError(f"{url}: unreachable ({reason}), and the shipped copy {exc.filename} is missing "
                            f"({restore})") from None
    require_text(record, SHIPPED_SOURCE, restore)
    require_text(data, SHIPPED, restore)
    try:
        shipped_url = json.loads(record)["url"]
    except (ValueError, TypeError, KeyError):
        raise PipelineError(f"{SHIPPED_SOURCE}: not the shipped copy's record (JSON with its url); {restore}") from None
    digest = hashlib.sha256(data).hexdigest()
    if shipped_url != url or digest != sha256:
        raise PipelineError(f"{url}: unreachable ({reason}), and the shipped copy {SHIPPED} (of {shipped_url}, "
                            f"sha256 {digest}) is not what params.yaml asks for (titanic.url {url}, "
                            f"titanic.sha256 {sha256}); nothing is substituted: reach the address, or set "
                            f"titanic.url and titanic.sha256 back to the shipped copy's")
    return data


def count_rows(data: bytes, where) -> int:
    """Data rows, for the provenance record (preprocessing reads the table itself)."""
    import csv

    # newline=None: lines may end in \r\n or a lone \r (old Mac files), as pandas reads them.
    try:
        return max(sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=None))) - 1, 0)
    except csv.Error as exc:
        raise PipelineError(f"{where}: not a readable CSV ({exc})") from None


def fetch(url: str, sha256: str, timeout: float) -> tuple[bytes, dict]:
    try:
        data = download(url, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        data = shipped_copy(url, sha256, reason)
        where = SHIPPED
        print(f"fetch_titanic: {url} unreachable ({reason}); using the copy shipped in {SHIPPED} "
              f"(the same file, sha256 checked)", file=sys.stderr)
        source = {"source": "shipped", "address": str(SHIPPED), "requested_url": url}
    else:
        # Before the checksum: "update the checksum" is the wrong advice for an archive.
        where = url
        require_text(data, url, "check that titanic.url serves the CSV itself, not an archive or a page")
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise PipelineError(f"{url}: sha256 {digest} does not match params.yaml titanic.sha256 "
                                f"{sha256}; check the address or update the checksum")
        source = {"source": "url", "address": url}
    source.update(sha256=hashlib.sha256(data).hexdigest(), rows=count_rows(data, where), bytes=len(data))
    return data, source


def main(params_path: str = config.PARAMS_FILE) -> None:
    titanic = config.load(params_path).titanic
    data, source = fetch(titanic.url, titanic.sha256, titanic.timeout)
    with atomic.Outputs() as out:
        out.file(RAW, data)
        out.json(SOURCE, source)
    print(f"fetch_titanic: {source['rows']} rows from {source['source']} ({source['address']}), "
          f"sha256 {source['sha256'][:12]}")
