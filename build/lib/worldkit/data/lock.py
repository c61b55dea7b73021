"""One writer per store, enforced by an OS file lock that dies with its process.

Two collections appending to one store would race for episode numbers; a reader cleaning
temporary files would delete a live writer's half-written episode. An ``flock`` on a file
in the store solves both, and the kernel releases it when the holder exits, however it
exits (SIGKILL included), so a crashed collection never leaves the store locked.
"""

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per store is then the user's promise
    fcntl = None


class StoreLockedError(RuntimeError):
    """Another process is writing to this store."""


class WriterLock:
    """An exclusive, non-blocking lock on ``path`` (created if missing)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True if this object now holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
        self._fd = fd
        return True

    def record(self, text: str) -> None:
        """Write ``text`` into the lock file (who holds it), replacing what was there."""
        if self._fd is None:
            raise RuntimeError("record() needs the lock held")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
