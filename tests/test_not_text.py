"""Bytes that are not text, wherever a stage reads a downloaded or shipped file: one `error:` line
naming the file or address and what it looks like, no traceback, nothing written."""
import gzip
import hashlib
import json
import shutil
import zipfile
from io import BytesIO

import pytest

from pipeline.core.text import looks_like
from pipeline.data.fetch import count_rows

from .conftest import ROOT, titanic_csv
from .test_troubleshooting import cli, one_clear_line, raw, write_params

GOOD = titanic_csv(rows=120)


def zipped(body: bytes) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("titanic.csv", body)
    return out.getvalue()


NOT_TEXT = {
    "gzip": (gzip.compress(GOOD), "it starts like a gzip archive"),
    "zip": (zipped(GOOD), "it starts like a ZIP archive (an .xlsx workbook is one)"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "it starts like a PNG image"),
    "pdf": (b"%PDF-1.7\n" + bytes(range(256)), "it starts like a PDF document"),
    "nul bytes": (GOOD[:200] + b"\x00" * 64 + GOOD[200:], "it holds NUL bytes"),
}


def nothing_written(project) -> None:
    assert not (project.path / "data" / "titanic").exists() or not any((project.path / "data" / "titanic").iterdir())


@pytest.mark.parametrize("kind", NOT_TEXT)
def test_a_download_that_is_not_text(project, serve, kind):
    body, expected = NOT_TEXT[kind]
    url = serve({"/titanic.csv": body}) + "/titanic.csv"
    write_params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": hashlib.sha256(body).hexdigest()})
    done = cli("fetch", "titanic")
    one_clear_line(done, f"error: {url}: not a text file ({expected}); check that datasets.titanic.source.url serves the CSV itself")
    nothing_written(project)


def test_not_text_is_said_before_a_checksum_mismatch(project, serve):
    """"update the checksum" would be the wrong advice for an archive."""
    url = serve({"/titanic.csv": gzip.compress(GOOD)}) + "/titanic.csv"
    write_params(**{"datasets.titanic.source.url": url, "datasets.titanic.source.sha256": hashlib.sha256(GOOD).hexdigest()})
    one_clear_line(cli("fetch", "titanic"), f"{url}: not a text file (it starts like a gzip archive)")
    nothing_written(project)


@pytest.mark.parametrize("name", ["titanic.csv", "titanic.json"])
def test_a_shipped_copy_that_is_not_text(project, serve, name):
    shutil.copytree(ROOT / "data" / "shipped", "data/shipped")
    shipped = json.loads((ROOT / "data" / "shipped" / "titanic.json").read_text())
    target = project.path / "data" / "shipped" / name
    target.write_bytes(gzip.compress(target.read_bytes()))
    unreachable = serve({}) + "/titanic.csv"  # nothing there: the shipped copy is used
    write_params(**{"datasets.titanic.source.url": unreachable, "datasets.titanic.source.sha256": shipped["sha256"]})
    one_clear_line(cli("fetch", "titanic"), f"error: data/shipped/{name}: not a text file (it starts like a gzip "
                                         f"archive); restore it with `git checkout data/shipped`")
    nothing_written(project)


@pytest.mark.parametrize("kind", NOT_TEXT)
def test_a_raw_file_that_is_not_text(project, kind):
    body, expected = NOT_TEXT[kind]
    write_params()
    raw(body)
    one_clear_line(cli("preprocess", "titanic"), f"error: data/titanic/raw.csv: not a text file ({expected}); "
                                              f"save or export it as CSV")
    assert sorted(p.name for p in (project.path / "data" / "titanic").iterdir()) == ["raw.csv"]


def test_text_is_text():
    assert looks_like(GOOD) is None
    assert looks_like("Survived,Sex\n1,female\n".encode("utf-16")) is None  # NUL bytes, but a byte-order mark
    assert looks_like(b"") is None


def test_rows_are_counted_whatever_ends_the_lines():
    assert count_rows(GOOD, "x") == count_rows(GOOD.replace(b"\n", b"\r\n"), "x") == 120
    assert count_rows(GOOD.replace(b"\n", b"\r"), "x") == 120  # old Mac files: no csv.Error
