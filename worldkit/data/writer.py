"""Writing episodes on background threads, so file work overlaps stepping the env.

An episode file costs a create, a write, an fsync and a rename: on a small VM
0.3-1 ms of kernel time plus, when the disk is busy, milliseconds of waiting, and a random
Walker2d ends an episode every ~20 steps. Deflating pixels costs CPU but releases the GIL.
On threads this work overlaps stepping, and several files in flight hide the disk's latency. The rename that publishes a file stays in the caller's
thread, in episode order, so a killed collection leaves no gap in the episode numbers.
"""

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from worldkit.data.episode import Episode
from worldkit.data.store import EpisodeStore
from worldkit.files import temp_path


class BackgroundWriter:
    """Append episodes to ``store`` from ``threads`` threads; at most ``max_pending`` in flight.

    An error (an invalid episode, a full disk) is raised by the ``add`` or ``close`` call
    that would have published the failed episode; the episodes behind it are dropped.

    Args:
        store: the store to append to; its writer lock must be held.
        threads: files written at once.
        max_pending: episodes held in memory before ``add`` waits for the oldest.
    """

    def __init__(self, store: EpisodeStore, threads: int = 4, max_pending: int = 16):
        self.store, self.max_pending = store, max_pending
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="worldkit-episode-writer")
        self._pending: deque[Future[Path]] = deque()

    def add(self, episode: Episode) -> None:
        self._publish_ready(wait=len(self._pending) >= self.max_pending)
        index = len(self.store) + len(self._pending)
        self._pending.append(self._pool.submit(self.store._prepare, episode, index))

    def close(self) -> None:
        """Publish every pending episode (in order) and stop the threads."""
        try:
            while self._pending:
                self._publish_ready(wait=True)
        finally:
            self._pool.shutdown(wait=True)  # temp files of episodes not published are cleaned on next open

    def _publish_ready(self, wait: bool) -> None:
        """Publish finished episodes from the oldest on; with ``wait``, wait for the oldest."""
        while self._pending and (wait or self._pending[0].done()):
            try:
                self.store._publish(self._pending.popleft().result())
            except BaseException:
                self._abandon()
                raise
            wait = False

    def _abandon(self) -> None:
        """After a failure, drop the episodes behind it (publishing them would leave a gap)."""
        for future in self._pending:
            future.cancel()
        for future in self._pending:
            with contextlib.suppress(Exception):  # cancelled, or failed itself
                temp_path(future.result()).unlink(missing_ok=True)
        self._pending.clear()
