"""Map-style torch datasets over an EpisodeStore that read episode files on demand.

Indexing uses only the episode lengths (from file names), so building a dataset opens no
file, and at most ``cache_bytes`` of loaded episodes stay in memory per process: a store
larger than memory can be trained on. Items are dicts of tensors in the stored dtypes:
pixel observations stay uint8 HWC (a model converts, on its device, once per batch),
state observations are float32, Box actions keep their dtype, Discrete actions are int64.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import Dataset

from worldkit.data.cache import EpisodeCache
from worldkit.data.store import EpisodeStore
from worldkit.observations import obs_map

DEFAULT_CACHE_BYTES = 256 * 2**20
StoreLike = EpisodeStore | str | os.PathLike
Episodes = Sequence[int] | np.ndarray | None


class EpisodeDataset(Dataset):
    """Items spread over a store's episodes; subclasses say how many per episode and which.

    Attributes:
        episodes: the store indices of the episodes used, in dataset order.
        lengths: their numbers of transitions.
        items_per_episode: how many items each gives.
        episode_nbytes: each one's size once loaded (from the spaces, no file opened).
    """

    def __init__(self, store: StoreLike, episodes: Episodes, cache_bytes: int):
        store = store if isinstance(store, EpisodeStore) else EpisodeStore(store)
        self.episodes = np.arange(len(store)) if episodes is None else np.asarray(episodes, dtype=np.int64)
        paths, lengths = store.episode_paths, store.lengths
        self.paths: list[Path] = [paths[i] for i in self.episodes]
        self.lengths = lengths[self.episodes]
        self.cache_bytes = cache_bytes
        self.items_per_episode = self._items_per_episode(self.lengths)
        self.episode_nbytes = _episode_nbytes(store, self.lengths)
        self._ends = np.cumsum(self.items_per_episode)
        self._cache: EpisodeCache | None = None

    def _items_per_episode(self, lengths: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def _locate(self, index: int) -> tuple[int, dict[str, np.ndarray], int]:
        """(position in self.episodes, the loaded episode, item number within it)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        position = int(np.searchsorted(self._ends, index, side="right"))
        first = int(self._ends[position - 1]) if position else 0
        if self._cache is None:
            self._cache = EpisodeCache(self.cache_bytes)
        return position, self._cache.get(self.paths[position]), index - first

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}  # each DataLoader worker loads for itself


class SequenceDataset(EpisodeDataset):
    """Fixed-length windows of ``length`` transitions, never crossing an episode boundary.

    Window ``(e, t)`` is a slice of episode ``e``, aligned as episodes are: ``obs`` is
    ``obs[t : t+L+1]`` (L+1 frames, the one after the last action included), and
    ``action``, ``reward``, ``terminated``, ``truncated`` are ``[t : t+L]``. Every start
    ``t = 0 .. T-L`` is a window, so an episode of T >= L transitions gives ``T-L+1``.
    An episode shorter than L gives one window, from its start, zero-padded at the end:
    ``mask[k]`` is True for real transitions, and ``obs[k]`` is real for ``k <= mask.sum()``.
    ``is_first[k]`` (aligned with obs) is True only at ``k = 0`` of a window that starts its
    episode, where a recurrent model resets its state. ``episode`` and ``start`` say
    where the window came from.

    Args:
        store: an :class:`EpisodeStore` or its directory.
        length: transitions per window (L).
        episodes: store indices of the episodes to use (all if None).
        cache_bytes: memory for loaded episodes, per process.
    """

    def __init__(self, store: StoreLike, length: int, *, episodes: Episodes = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self.length = length
        super().__init__(store, episodes, cache_bytes)

    def _items_per_episode(self, lengths: np.ndarray) -> np.ndarray:
        return np.maximum(lengths - self.length + 1, 1)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position, episode, start = self._locate(index)
        size = min(self.length, int(self.lengths[position]) - start)
        window = {"obs": obs_map(lambda x: _padded(x[start : start + size + 1], self.length + 1), episode["obs"])}
        for key in ("action", "reward", "terminated", "truncated"):
            window[key] = _padded(episode[key][start : start + size], self.length)
        window["mask"] = np.arange(self.length) < size
        window["is_first"] = np.zeros(self.length + 1, dtype=bool)
        window["is_first"][0] = start == 0
        window = {key: obs_map(torch.from_numpy, value) for key, value in window.items()}
        window["episode"] = torch.tensor(int(self.episodes[position]))
        window["start"] = torch.tensor(start)
        return window


class TransitionDataset(EpisodeDataset):
    """Single transitions ``(obs, action, reward, next_obs, terminated, truncated)``.

    ``next_obs`` of an episode's last transition is its true final observation (never the
    next episode's first). Bootstrap from it when ``truncated``, not when ``terminated``.

    Args:
        store: an :class:`EpisodeStore` or its directory.
        episodes: store indices of the episodes to use (all if None).
        cache_bytes: memory for loaded episodes, per process.
    """

    def __init__(self, store: StoreLike, *, episodes: Episodes = None, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(store, episodes, cache_bytes)

    def _items_per_episode(self, lengths: np.ndarray) -> np.ndarray:
        return lengths

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        _, episode, t = self._locate(index)
        item = {
            "obs": obs_map(lambda x: x[t].copy(), episode["obs"]),
            "action": np.array(episode["action"][t]),
            "reward": np.array(episode["reward"][t]),
            "next_obs": obs_map(lambda x: x[t + 1].copy(), episode["obs"]),
            "terminated": np.array(episode["terminated"][t]),
            "truncated": np.array(episode["truncated"][t]),
        }
        return {key: obs_map(torch.from_numpy, value) for key, value in item.items()}


def _episode_nbytes(store: EpisodeStore, lengths: np.ndarray) -> np.ndarray:
    space = store.observation_space
    parts = space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]
    obs = sum(np.dtype(part.dtype).itemsize * int(np.prod(part.shape)) for part in parts)
    action = np.dtype(store.action_space.dtype).itemsize * int(np.prod(store.action_space.shape))
    return (lengths + 1) * obs + lengths * (action + 4 + 1 + 1)  # + reward, terminated, truncated


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    """A copy of ``array`` zero-padded along the first axis to ``size`` (never a view of the cache)."""
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out
