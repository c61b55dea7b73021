"""Atomic file writes for the episode store: a file appears whole under its name or not at all.

Every file is written with :mod:`worldkit.files` (a hidden temporary name, fsynced, then
renamed into place). A killed writer can only leave a temporary file, which readers never list
and the next writer removes.
"""

from pathlib import Path

from worldkit.files import TEMP_PREFIX

__all__ = ["remove_temp_files"]


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
