"""gymnasium spaces in one place: as JSON (so stores and checkpoints name them without pickle), the
checks every model and controller makes of them, and the one map of [-1, 1] onto a Box's bounds."""

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import torch


class SpaceMismatchError(ValueError):
    """A world model, a controller or a checkpoint and an env disagree about observations or actions."""


def as_space(space: "gym.Space | dict[str, Any]") -> gym.Space:
    """A space, or its :func:`space_to_dict` description, as a space."""
    return space if isinstance(space, gym.Space) else space_from_dict(space)


def action_size(space: gym.Space, who: str = "this controller") -> int:
    """Outputs a policy needs: one per Discrete action, one per dimension of a 1-D Box; a ValueError
    naming ``who`` for any other space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return space.shape[0]
    raise ValueError(f"{who} acts in Discrete or 1-D Box spaces, not {space}")


def require_flat_box(space: gym.Space, who: str) -> None:
    """A ValueError naming ``who`` unless ``space`` is a flat Box (state observations)."""
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ValueError(f"{who} takes state observations (a flat Box), not {space}")


def to_bounds(unit: "torch.Tensor", box: gym.spaces.Box) -> "torch.Tensor":
    """Actions in [-1, 1] mapped linearly onto the Box's bounds (a tanh output, a clipped sample)."""
    import torch

    low, high = (torch.as_tensor(bound, dtype=unit.dtype, device=unit.device) for bound in (box.low, box.high))
    return low + (unit + 1) / 2 * (high - low)


def same_actions(a: gym.Space, b: gym.Space) -> bool:
    """Same kind, shape and bounds (dtypes may differ: dm-control's are float64)."""
    if isinstance(a, gym.spaces.Discrete) and isinstance(b, gym.spaces.Discrete):
        return a.n == b.n and a.start == b.start
    return (isinstance(a, gym.spaces.Box) and isinstance(b, gym.spaces.Box) and a.shape == b.shape
            and np.allclose(a.low, b.low) and np.allclose(a.high, b.high))


def check_compatible(world_model: Any, env: "gym.Env | gym.vector.VectorEnv") -> None:
    """Raise :class:`SpaceMismatchError`, naming both, unless the env's actions (and, where the
    model records them, observation shape) are the world model's."""
    single = getattr(env, "single_action_space", None)
    mine, theirs = world_model.action_space, single if single is not None else env.action_space
    if not same_actions(mine, theirs):
        raise SpaceMismatchError(f"the world model acts in {mine} but the env in {theirs}: "
                                 "use a world model trained on this env")
    model_obs = getattr(world_model, "observation_space", None)
    env_obs = getattr(env, "single_observation_space", None) or env.observation_space
    if model_obs is not None and obs_shapes(model_obs) != obs_shapes(env_obs):
        raise SpaceMismatchError(f"the world model reads observations of shape {obs_shapes(model_obs)} but the "
                                 f"env gives {obs_shapes(env_obs)}: use a world model trained on "
                                 "this env (same obs=state|pixels and size)")


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
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_dict(value) for key, value in space.spaces.items()}}
    raise TypeError(f"worldkit stores Box, Discrete and Dict spaces, not {type(space).__name__}")


def space_from_dict(data: dict[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_dict`."""
    if data["type"] == "Box":
        shape, dtype = tuple(data["shape"]), np.dtype(data["dtype"])
        low, high = (_bound(data[key], shape, dtype) for key in ("low", "high"))
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    if data["type"] == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data.get("start", 0))
    if data["type"] == "Dict":
        return gym.spaces.Dict({key: space_from_dict(value) for key, value in data["spaces"].items()})
    raise ValueError(f"unknown space type {data['type']!r} (expected Box, Discrete or Dict)")


def obs_shapes(space: gym.Space) -> Any:
    """The observation shape, or a dict of them for a Dict space."""
    if isinstance(space, gym.spaces.Dict):
        return {key: tuple(value.shape) for key, value in space.spaces.items()}
    return tuple(space.shape)


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
