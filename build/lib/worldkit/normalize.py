"""Running statistics for observation and reward normalisation, stored as module buffers.

Keeping them as buffers (not in an env wrapper, as CleanRL and SB3 do) means a checkpoint of the
agent carries the exact statistics its weights were trained with, and evaluation uses them frozen.
"""

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)
EPSILON = 1e-8  # keeps a zero variance from dividing by zero


class RunningMeanStd(nn.Module):
    """Mean and variance of everything passed to :meth:`update`, merged batch by batch (Chan et al.).

    Statistics are float64: they average millions of samples, which float32 would round away.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        # A tiny starting count, as in SB3/CleanRL, so the first batch needs no special case.
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    def update(self, batch: np.ndarray) -> None:
        """Fold in ``batch`` (samples along the first dimension)."""
        self._fold(batch)

    def update_normalize(self, batch: np.ndarray, clip: float) -> np.ndarray:
        """Fold in ``batch``, then return it normalised with the new statistics (one pass, as a
        rollout needs for every fresh observation)."""
        from_mean = self._fold(batch)
        return (from_mean / np.sqrt(self.var.numpy() + EPSILON)).clip(-clip, clip).astype(batch.dtype)

    def _fold(self, batch: np.ndarray) -> np.ndarray:
        """Welford's update, for a batch: the sum of squares grows by sum((x - old mean) * (x - new
        mean)), which equals Chan et al.'s merge of two sets' moments in fewer operations.
        Returns ``batch - new mean``."""
        batch = np.asarray(batch, dtype=np.float64)
        mean, var, count = self._numpy()
        total = count + batch.shape[0]
        from_old_mean = batch - mean
        mean += from_old_mean.sum(0) / total
        from_new_mean = batch - mean
        var[...] = (var * count + (from_old_mean * from_new_mean).sum(0)) / total
        count[...] = total
        return from_new_mean

    def update_each(self, batches: np.ndarray) -> np.ndarray:
        """Fold in ``batches[0]``, ``batches[1]``, ... in turn; return the variance after each.

        Same result as one :meth:`update` per batch (up to rounding), in a few vectorised operations.
        """
        batches = np.asarray(batches, dtype=np.float64)
        mean, var, count = self._numpy()
        num_batches, batch_size = batches.shape[:2]
        centred = batches - mean  # moments about the old mean lose less to rounding
        counts = (count + batch_size * np.arange(1, num_batches + 1)).reshape(-1, *[1] * mean.ndim)
        means = np.cumsum(centred.sum(1), 0) / counts
        variances = (count * var + np.cumsum(np.square(centred).sum(1), 0)) / counts - np.square(means)
        mean[...] += means[-1]
        var[...] = variances[-1]
        count[...] = counts[-1]
        return variances

    def normalize(self, x: ArrayT, clip: float) -> ArrayT:
        """``(x - mean) / std`` clipped to ``[-clip, clip]``, in ``x``'s type and dtype."""
        if isinstance(x, np.ndarray):
            mean, var, _ = self._numpy()
            return ((x - mean) / np.sqrt(var + EPSILON)).clip(-clip, clip).astype(x.dtype)
        return ((x - self.mean) / torch.sqrt(self.var + EPSILON)).clamp_(-clip, clip).to(x.dtype)

    def _numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the buffers: on an env step's handful of numbers numpy is several times faster
        than torch, and the learner runs on the CPU."""
        return self.mean.numpy(), self.var.numpy(), self.count.numpy()
