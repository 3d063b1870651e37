"""Crash-safe file writing: nothing is ever half-written.

Whole files go to a temporary sibling, are fsynced, then renamed over the target (``os.replace``
is atomic on POSIX) and the directory entry is fsynced too. Logs are appended one JSON line at a
time with flush + fsync; a line torn by a crash mid-append is dropped by :func:`read_jsonl` and cut
off by the next :func:`append_jsonl`, so a resumed run never glues a new record onto a torn one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gemkit.errors import DataError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; finished files get the mode an ordinary open() would have given them.
_UMASK = _current_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a whole JSONL file atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def _cut_torn_tail(fh: Any) -> None:
    """Truncate bytes after the last newline of a file opened ``r+b`` (a line a crash left unfinished)."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return
    fh.seek(end - 1)
    if fh.read(1) == b"\n":
        return
    position, block = end, 1 << 16
    while position > 0:
        start = max(0, position - block)
        fh.seek(start)
        chunk = fh.read(position - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            fh.truncate(start + newline + 1)
            return
        position = start
    fh.truncate(0)


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line and force it to disk (a torn last line from a crash is cut off first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str) + "\n").encode("utf-8")
    with open(path, "a+b") as fh:
        _cut_torn_tail(fh)
        fh.seek(0, os.SEEK_END)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file (none if it does not exist).

    A last line without its newline that does not parse is a crash mid-append and is dropped; any
    other bad line is a :class:`~gemkit.errors.DataError` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_bytes().split(b"\n")
    last = len(lines) - 1  # the text after the final newline ("" for a complete file)
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            if index == last:
                return
            raise DataError(str(path), f"not valid JSON ({exc})", line=index + 1) from None


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Write into a temporary sibling directory; on success it takes ``target``'s place.

    The previous ``target`` (if any) is moved aside first and deleted only after the new directory
    is in place, so at every moment the old or the new tree exists in full. On an exception the
    temporary directory is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, _DIR_MODE)
    old: Path | None = None
    try:
        yield tmp
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        if old is not None and (old / "previous").exists() and not target.exists():
            os.replace(old / "previous", target)  # put the previous tree back
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
