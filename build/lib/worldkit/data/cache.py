"""A bounded LRU cache of loaded episodes, so datasets read files on demand.

The bound is in bytes, not episodes: a pixel episode weighs a thousand state episodes.
Each DataLoader worker holds its own cache (it is not shared and not pickled).
"""

from collections import OrderedDict
from pathlib import Path

from worldkit.data.episode import Episode, read_episode


class EpisodeCache:
    """Load episode files through an LRU cache of at most ``max_bytes`` (the latest always stays)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._episodes: OrderedDict[Path, Episode] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path) -> Episode:
        episode = self._episodes.get(path)
        if episode is not None:
            self._episodes.move_to_end(path)
            return episode
        episode = read_episode(path)
        self._episodes[path] = episode
        self._bytes += _nbytes(episode)
        while self._bytes > self.max_bytes and len(self._episodes) > 1:
            _, evicted = self._episodes.popitem(last=False)
            self._bytes -= _nbytes(evicted)
        return episode

    def __len__(self) -> int:
        return len(self._episodes)


def _nbytes(episode: Episode) -> int:
    return sum(sum(a.nbytes for a in x.values()) if isinstance(x, dict) else x.nbytes for x in episode.values())
