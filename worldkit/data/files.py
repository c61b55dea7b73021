"""Atomic file writes: a file appears whole under its name or not at all.

A writer killed mid-write (SIGKILL, power loss) must never leave a torn episode that a later
reader trusts. So every file is written under a temporary name in the same directory,
flushed and fsynced, then renamed over its final name with ``os.replace`` (atomic on POSIX
and Windows within one filesystem). A killed writer can only leave a temporary file, which
readers never list and the next writer removes.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (hidden, same directory)."""
    return path.with_name(TEMP_PREFIX + path.name)


def write_temp(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on ``path``'s temporary file and make it durable; returns that file.

    Renaming it to ``path`` (``os.replace``) is the atomic step that publishes it.
    """
    temp = temp_path(path)
    try:
        with open(temp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` so that it appears whole or not at all."""
    os.replace(write_temp(path, write), path)


def remove_temp_files(directory: Path) -> list[Path]:
    """Delete what killed writers left behind; returns the paths removed.

    Only call this while holding the directory's writer lock: a live writer's temporary
    file looks exactly like a dead one's.
    """
    removed = []
    for path in directory.glob(TEMP_PREFIX + "*"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
