"""Bytes that are not text, told apart before anything parses them.

Every stage that reads a downloaded or shipped file asks here first, so that a gzip archive, a
workbook or an image behind a `.csv` name ends in one line saying what it looks like, not in a
parser's traceback. Standard library only: fetching must not pay for pandas.
"""
from __future__ import annotations

import codecs

from .errors import PipelineError

# How files that are not text begin, whatever their name says.
NOT_TEXT = {b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)", b"\xd0\xcf\x11\xe0": "an .xls workbook",
            b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
            b"%PDF": "a PDF document", b"\x1f\x8b": "a gzip archive", b"\xfd7zXZ\x00": "an xz archive",
            b"\x28\xb5\x2f\xfd": "a zstd archive", b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
            b"PAR1": "a Parquet file", b"SQLite format 3\x00": "an SQLite database"}


def looks_like(data: bytes) -> str | None:
    """What the bytes look like when they are not text ('it starts like a gzip archive', 'it holds
    NUL bytes'), else None. UTF-16 with a byte-order mark is text, NUL bytes and all."""
    for signature, what in NOT_TEXT.items():
        if data.startswith(signature):
            return f"it starts like {what}"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    if b"\x00" in data[:4096]:
        return "it holds NUL bytes"
    return None


def require_text(data: bytes, where, fix: str = "save or export it as CSV") -> None:
    """Raise the one-line error naming `where` (a file or an address) if the bytes are not text."""
    what = looks_like(data)
    if what:
        raise PipelineError(f"{where}: not a text file ({what}); {fix}")
