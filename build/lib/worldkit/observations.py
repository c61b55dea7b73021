"""Observations are an array, or a dict of arrays (a gymnasium Dict space: state and image side by
side, as DreamerV3 reads them). These few maps let the data path and the models handle both the
same way, batched or not, numpy or torch."""

from collections.abc import Callable
from typing import Any

import numpy as np

Obs = Any
"""an array (numpy or torch) or a dict of them"""


def obs_map(fn: Callable[[Any], Any], obs: Obs) -> Obs:
    """``fn`` applied to the array, or to every array of the dict."""
    return {key: fn(value) for key, value in obs.items()} if isinstance(obs, dict) else fn(obs)


def obs_index(obs: Obs, index: Any) -> Obs:
    """``obs[index]`` (a row, a slice, rows), of every array of a dict."""
    return obs_map(lambda x: x[index], obs)


def obs_stack(items: list[Obs]) -> Obs:
    """Observations stacked along a new first axis."""
    if isinstance(items[0], dict):
        return {key: np.stack([item[key] for item in items]) for key in items[0]}
    return np.stack(items)


def obs_len(obs: Obs) -> int:
    """The first axis' length (the batch)."""
    return len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
