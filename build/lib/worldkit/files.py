"""Atomic file writes, and reading the JSON-lines files runs log to.

A writer killed mid-write (SIGKILL, power loss) must never leave a torn file that a later reader
trusts. So a file is written under a hidden temporary name in the same directory, flushed and
fsynced, then renamed over its final name with ``os.replace`` (atomic on POSIX and Windows within
one filesystem): the old file or the new one, whole. A killed writer can only leave a temporary
file. No worldkit imports here, so any module can use it.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (hidden, same directory)."""
    path = Path(path)
    return path.with_name(TEMP_PREFIX + path.name)


def write_temp(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on ``path``'s temporary file and make it durable; returns that file.

    Renaming it to ``path`` (``os.replace``) is the atomic step that publishes it.
    """
    temp = temp_path(path)
    try:
        with open(temp, "wb") as file:
            write(file)
            _flush_to_disk(file)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def sync_to_disk(path: Path) -> None:
    """Make a file already written durable (for files a library writes by name, renamed in place after)."""
    with open(path, "rb") as file:
        _flush_to_disk(file)


def _flush_to_disk(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` so that it appears whole or not at all (a failed write leaves the old file)."""
    os.replace(write_temp(path, write), path)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (none if it does not exist)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
