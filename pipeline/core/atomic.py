"""Write outputs so that a crash never leaves half of one behind.

Everything is written beside its final path and moved into place with os.replace,
which is atomic on one filesystem: a reader sees the old file or the new one, never a mix.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_bytes(path: Path, data: bytes | str) -> None:
    with Outputs() as out:
        out.file(path, data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text)


def write_json(path: Path, obj) -> None:
    with Outputs() as out:
        out.json(path, obj)


def npz_bytes(arrays: dict) -> bytes:
    """Typed arrays, no pickles: read back with read_npz (allow_pickle=False)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_npz(path: Path, stage: str) -> dict:
    import numpy as np

    from .errors import PipelineError

    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro {stage}` first") from None


@contextlib.contextmanager
def directory(path: Path):
    """Yield a temporary folder; on success it replaces `path` whole, on failure it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Outputs:
    """All of a stage's outputs, or none: each is first written beside its target, and only when
    every one is written are they moved into place. A read-only folder or a full disk therefore
    stops the stage before it replaces anything.

        with atomic.Outputs() as out:
            out.file(path, data)
            out.folder(path, {"model.pt": weights})
    """

    def __init__(self):
        self.staged: list[tuple[Path, Path]] = []

    def file(self, path: Path, data: bytes | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.staged.append((Path(tmp), path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_UMASK)

    def json(self, path: Path, obj) -> None:
        self.file(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def folder(self, path: Path, files: dict[str, bytes | str]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        self.staged.append((tmp, path))
        for name, data in files.items():
            (tmp / name).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o777 & ~_UMASK)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            if kind is None:
                for tmp, final in self.staged:
                    if tmp.is_dir():
                        shutil.rmtree(final, ignore_errors=True)
                    os.replace(tmp, final)
        finally:
            for tmp, _ in self.staged:
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
