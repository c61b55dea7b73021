"""The calls every world model offers, so a controller never asks which one it has.

A state is a tuple of tensors (a NamedTuple) whose first dimension is the batch: rollouts and
vector envs repeat, select and reset states field by field without knowing what they hold.
"""

from typing import Protocol, runtime_checkable

import gymnasium as gym
import torch

State = tuple[torch.Tensor, ...]


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
