"""LightningDataModules over an EpisodeStore, with a held-out split by episode.

Windows of one episode overlap, so a split by item would leak validation frames into
training; the split is by episode. Episode ``i`` is held out when a hash of ``(seed, i)``
falls below ``val_fraction``: deterministic, and stable as a store grows (collecting more
never moves an episode from one side to the other, so validation losses stay comparable).
"""

from pathlib import Path

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from worldkit.data.datasets import (
    DEFAULT_CACHE_BYTES,
    EpisodeDataset,
    SequenceDataset,
    StoreLike,
    TransitionDataset,
)
from worldkit.data.sampler import BlockShuffleSampler
from worldkit.data.store import EpisodeStore


def split_episodes(num_episodes: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation episode indices (sorted, disjoint, covering ``range(num_episodes)``).

    With ``0 < val_fraction < 1`` and two or more episodes, each side gets at least one.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    indices = np.arange(num_episodes)
    score = _unit_hash(seed, indices)
    held_out = score < val_fraction
    if val_fraction > 0 and num_episodes >= 2:
        if not held_out.any():
            held_out[np.argmin(score)] = True
        if held_out.all():
            held_out[np.argmax(score)] = False
    return indices[~held_out], indices[held_out]


class EpisodeDataModule(L.LightningDataModule):
    """Train/validation loaders over a store; subclasses choose the dataset.

    Attributes:
        train_episodes, val_episodes: store indices on each side (after ``setup``).
        env_spec, observation_space, action_space: the store's, for building a model.
    """

    def __init__(self, store: StoreLike, *, batch_size: int, num_workers: int, val_fraction: float, seed: int,
                 cache_bytes: int):
        super().__init__()
        store = store if isinstance(store, EpisodeStore) else EpisodeStore(store)
        self.store_path = Path(store.path)
        self.env_spec = store.env_spec
        self.observation_space, self.action_space = store.observation_space, store.action_space
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.seed, self.cache_bytes = val_fraction, seed, cache_bytes
        self.train_dataset: EpisodeDataset | None = None
        self.val_dataset: EpisodeDataset | None = None

    def _dataset(self, store: EpisodeStore, episodes: np.ndarray) -> EpisodeDataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Split the store's episodes (as they are now) and build both datasets."""
        store = EpisodeStore(self.store_path)
        if len(store) == 0:
            raise ValueError(f"the episode store at {self.store_path} is empty; collect some episodes first")
        if self.val_fraction > 0 and len(store) < 2:
            raise ValueError("holding out episodes needs at least 2 of them; use val_fraction=0 for none")
        self.train_episodes, self.val_episodes = split_episodes(len(store), self.val_fraction, self.seed)
        self.train_dataset = self._dataset(store, self.train_episodes)
        self.val_dataset = self._dataset(store, self.val_episodes)

    def train_dataloader(self) -> DataLoader:
        sampler = BlockShuffleSampler(self.train_dataset, seed=self.seed)
        return self._loader(self.train_dataset, sampler=sampler)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_dataset) if len(self.val_episodes) else []

    def _loader(self, dataset: EpisodeDataset, sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,  # workers keep their episode caches across epochs
        )


class SequenceDataModule(EpisodeDataModule):
    """Batches of :class:`SequenceDataset` windows, split by episode.

    Args:
        store: an :class:`EpisodeStore` or its directory.
        sequence_length: transitions per window.
        batch_size: windows per batch.
        num_workers: DataLoader worker processes (each with its own episode cache).
        val_fraction: share of episodes held out for validation.
        seed: fixes the split and the shuffling.
        cache_bytes: episode cache per process.
    """

    def __init__(self, store: StoreLike, sequence_length: int, *, batch_size: int = 16,
                 num_workers: int = 0, val_fraction: float = 0.1, seed: int = 0,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(store, batch_size=batch_size, num_workers=num_workers, val_fraction=val_fraction,
                         seed=seed, cache_bytes=cache_bytes)
        self.sequence_length = sequence_length
        self.save_hyperparameters({"store": str(self.store_path), "env_spec": self.env_spec,
                                   "sequence_length": sequence_length, "batch_size": batch_size,
                                   "val_fraction": val_fraction, "seed": seed})

    def _dataset(self, store: EpisodeStore, episodes: np.ndarray) -> SequenceDataset:
        return SequenceDataset(store, self.sequence_length, episodes=episodes, cache_bytes=self.cache_bytes)


class TransitionDataModule(EpisodeDataModule):
    """Batches of :class:`TransitionDataset` transitions, split by episode.

    Args:
        store: an :class:`EpisodeStore` or its directory.
        batch_size: transitions per batch.
        num_workers: DataLoader worker processes (each with its own episode cache).
        val_fraction: share of episodes held out for validation.
        seed: fixes the split and the shuffling.
        cache_bytes: episode cache per process.
    """

    def __init__(self, store: StoreLike, *, batch_size: int = 256, num_workers: int = 0,
                 val_fraction: float = 0.1, seed: int = 0, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(store, batch_size=batch_size, num_workers=num_workers, val_fraction=val_fraction,
                         seed=seed, cache_bytes=cache_bytes)
        self.save_hyperparameters({"store": str(self.store_path), "env_spec": self.env_spec,
                                   "batch_size": batch_size, "val_fraction": val_fraction, "seed": seed})

    def _dataset(self, store: EpisodeStore, episodes: np.ndarray) -> TransitionDataset:
        return TransitionDataset(store, episodes=episodes, cache_bytes=self.cache_bytes)


def _unit_hash(seed: int, indices: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) from (seed, index) by splitmix64, independent per index."""
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))
        return (_splitmix64(key + indices.astype(np.uint64)) >> np.uint64(11)) / float(2**53)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
