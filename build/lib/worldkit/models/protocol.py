"""The calls every world model offers, so a controller never asks which one it has.

A state is a tuple of tensors (a NamedTuple) whose first dimension is the batch: rollouts and
vector envs repeat, select and reset states field by field without knowing what they hold.
"""

from typing import Protocol, runtime_checkable

import gymnasium as gym
import torch

State = tuple[torch.Tensor, ...]


def repeat_state(state: State, times: int) -> State:
    """Each of ``times`` copies of a whole batch after the other: rows (times * B), copy-major."""
    return _like(state, [field.repeat(times, *([1] * (field.dim() - 1))) for field in state])


def select_state(state: State, index: torch.Tensor) -> State:
    """The rows ``index`` of a batch of states."""
    return _like(state, [field[index] for field in state])


def replace_rows(state: State, rows: torch.Tensor, new: State) -> State:
    """``state`` with its rows ``rows`` replaced by the batch ``new`` (as many rows as ``rows``)."""
    return _like(state, [field.index_copy(0, rows, replacement) for field, replacement in zip(state, new)])


def detach_state(state: State) -> State:
    """The same state cut from any graph (imagination that learns starts here, no gradient further back)."""
    return _like(state, [field.detach() for field in state])


def _like(state: State, fields: list[torch.Tensor]) -> State:
    """A state of the same kind (NamedTuple or plain tuple) holding ``fields``."""
    return type(state)(*fields) if hasattr(state, "_fields") else tuple(fields)


WORLD_MODELS: dict[str, type] = {}
"""every class declared with :func:`world_model`, by its qualified name"""

_CALLS = ("initial_state", "observe", "imagine", "features", "decode")


def world_model(cls: type) -> type:
    """Declare that ``cls`` implements :class:`WorldModel`, and register it.

    Why: a registered model is put through the same conformance tests as worldkit's own
    (tests/test_world_model_protocol.py), so a new world model gets them by this line alone.
    """
    missing = [name for name in (*_CALLS, "feature_dim") if not hasattr(cls, name)]
    if missing:
        raise TypeError(f"{cls.__qualname__} lacks {', '.join(missing)} of the WorldModel protocol")
    WORLD_MODELS[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


@runtime_checkable
class WorldModel(Protocol):
    """A latent world model: filters real observations, imagines steps, shows features."""

    env_spec: str | None
    """the env id the model was trained on"""

    @property
    def feature_dim(self) -> int:
        """Size of :meth:`features`."""

    @property
    def action_space(self) -> gym.Space:
        """The (single) action space of the env the model was trained on."""

    def initial_state(self, batch_size: int) -> State:
        """The state before any observation."""

    def observe(self, state: State, action: torch.Tensor | None, obs: torch.Tensor) -> State:
        """Filter a real observation in: ``action`` led from ``state`` to ``obs`` (None for an
        episode's first observation)."""

    def imagine(self, state: State, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One dreamed step: (next state, reward (B,), probability the episode continues (B,)).
        ``temperature`` scales the model's randomness (0: its likeliest step)."""

    def features(self, state: State) -> torch.Tensor:
        """What a controller sees, (B, feature_dim)."""

    def decode(self, state: State) -> torch.Tensor:
        """What the state shows as the env would: frames in [0, 1] (B, H, W, C) for a model of
        pixels, observations (B, obs_dim) for a model of states. For pictures of a dream and
        open-loop prediction errors."""
