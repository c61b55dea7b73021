"""Episode data: collection with any policy, a crash-safe episode store, datasets.

Collect with :func:`collect`; episodes land in an :class:`EpisodeStore` (one ``.npz`` per
finished episode, written atomically); train from it with :class:`SequenceDataModule` or
:class:`TransitionDataModule`, which read episode files on demand.

The datasets and data modules (torch, Lightning) are imported on first use. A collection
script never loads them, and neither do the env processes ``vectorization="async"`` spawns,
which re-import the script: each is spared seconds of imports and hundreds of MB.
"""

import importlib
from typing import TYPE_CHECKING

from worldkit.data.collector import collect
from worldkit.data.episode import InvalidEpisodeError, read_episode
from worldkit.data.lock import StoreLockedError
from worldkit.data.store import EpisodeStore, StoreMismatchError

if TYPE_CHECKING:
    from worldkit.data.datamodules import (
        EpisodeDataModule,
        SequenceDataModule,
        TransitionDataModule,
        split_episodes,
    )
    from worldkit.data.datasets import (
        EpisodeDataset,
        SequenceDataset,
        TransitionDataset,
    )
    from worldkit.data.sampler import BlockShuffleSampler

_LAZY = {
    "EpisodeDataModule": "worldkit.data.datamodules",
    "SequenceDataModule": "worldkit.data.datamodules",
    "TransitionDataModule": "worldkit.data.datamodules",
    "split_episodes": "worldkit.data.datamodules",
    "EpisodeDataset": "worldkit.data.datasets",
    "SequenceDataset": "worldkit.data.datasets",
    "TransitionDataset": "worldkit.data.datasets",
    "BlockShuffleSampler": "worldkit.data.sampler",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'worldkit.data' has no attribute {name!r}")


__all__ = [
    "BlockShuffleSampler",
    "EpisodeDataModule",
    "EpisodeDataset",
    "EpisodeStore",
    "InvalidEpisodeError",
    "SequenceDataModule",
    "SequenceDataset",
    "StoreLockedError",
    "StoreMismatchError",
    "TransitionDataModule",
    "TransitionDataset",
    "collect",
    "read_episode",
    "split_episodes",
]
