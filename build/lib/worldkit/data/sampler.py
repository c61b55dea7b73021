"""Shuffling that reads each episode file about once per epoch.

A uniform shuffle over a store larger than the episode cache misses the cache on almost
every item, and a miss loads (and, for pixels, inflates) a whole episode for one window.
This sampler shuffles episodes, cuts them into blocks that fit the cache, and shuffles the
items within each block: every item once per epoch, each episode loaded about once (once
per DataLoader worker). When the whole dataset fits the cache it is one uniform shuffle.
"""

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from worldkit.data.datasets import EpisodeDataset


class BlockShuffleSampler(Sampler[int]):
    """Random order, episode blocks at a time; a new order each epoch, fixed by ``seed``.

    Args:
        dataset: a :class:`SequenceDataset` or :class:`TransitionDataset`.
        seed: the order of epoch ``e`` depends only on ``(seed, e)``.
    """

    def __init__(self, dataset: EpisodeDataset, *, seed: int = 0):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at each epoch's start, as for a DistributedSampler."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1  # without Lightning, the next pass still gets a new order
        data = self.dataset
        starts = np.concatenate([[0], np.cumsum(data.items_per_episode)[:-1]])
        block: list[np.ndarray] = []
        block_bytes = 0
        for position in rng.permutation(len(data.items_per_episode)):
            if block and block_bytes + data.episode_nbytes[position] > data.cache_bytes:
                yield from rng.permutation(np.concatenate(block)).tolist()
                block, block_bytes = [], 0
            block.append(starts[position] + np.arange(data.items_per_episode[position]))
            block_bytes += data.episode_nbytes[position]
        if block:
            yield from rng.permutation(np.concatenate(block)).tolist()
