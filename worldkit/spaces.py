"""gymnasium spaces as JSON, so episode stores and checkpoints can name them without pickle."""

from typing import Any

import gymnasium as gym
import numpy as np


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """Describe a Box or Discrete space as plain JSON types."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _compact(space.low),
            "high": _compact(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise TypeError(f"worldkit stores Box and Discrete spaces, not {type(space).__name__}")


def space_from_dict(data: dict[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_dict`."""
    if data["type"] == "Box":
        shape, dtype = tuple(data["shape"]), np.dtype(data["dtype"])
        low, high = (_bound(data[key], shape, dtype) for key in ("low", "high"))
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    if data["type"] == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data.get("start", 0))
    raise ValueError(f"unknown space type {data['type']!r} (expected Box or Discrete)")


def spaces_match(a: gym.Space, b: gym.Space) -> bool:
    """Same kind, shape, dtype and bounds (what a model trained on one needs of the other)."""
    return space_to_dict(a) == space_to_dict(b)


def _bound(stored: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    values = np.asarray(stored, dtype=np.float64 if dtype.kind == "f" else dtype)
    return np.full(shape, values, dtype=dtype) if values.ndim == 0 else values.reshape(shape).astype(dtype)


def _compact(bound: np.ndarray) -> Any:
    """A bound that is the same everywhere is stored as one number (pixel spaces are big)."""
    flat = bound.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _json_number(flat[0])
    return [_json_number(x) for x in flat]


def _json_number(x: Any) -> Any:
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and not np.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return x
