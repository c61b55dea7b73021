"""What may act during collection: nothing (random), a function, or a controller with ``act``.

Every form becomes one call ``obs_batch -> action_batch`` on numpy arrays, plus a name and
a description for the store's metadata, so a store says which behaviour its data shows.
"""

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], Any]


def resolve_policy(policy: Any, action_space: gym.Space) -> tuple[Policy, dict[str, str]]:
    """Turn ``policy`` into ``(act, description)``.

    Args:
        policy: None for uniform random actions (``action_space.sample()``); an object with an
            ``act(obs_batch)`` method (a controller); or a callable ``policy(obs_batch)``.
        action_space: the vector env's batched action space (sampled when ``policy`` is None).
    """
    if policy is None:
        return (lambda obs: action_space.sample()), {
            "name": "random",
            "description": "uniform samples of the action space",
        }
    act = getattr(policy, "act", None)
    if not callable(act):
        if not callable(policy):
            raise TypeError(f"policy must be None, callable, or have an act(obs) method; got {type(policy).__name__}")
        act = policy
    owner = policy if hasattr(policy, "__qualname__") else type(policy)
    doc = (getattr(policy, "__doc__", None) or "").strip()
    return act, {
        "name": f"{owner.__module__}.{owner.__qualname__}",
        "description": doc.splitlines()[0] if doc else "",
    }


def as_action_batch(actions: Any, action_space: gym.Space) -> np.ndarray:
    """A policy's output as a numpy batch of the action space's shape (torch tensors included)."""
    if hasattr(actions, "detach"):
        actions = actions.detach().cpu().numpy()
    actions = np.asarray(actions)
    if actions.shape != action_space.shape:
        raise ValueError(
            f"the policy returned actions of shape {actions.shape}; the env takes a batch of shape "
            f"{action_space.shape} (num_envs first)"
        )
    return actions.astype(action_space.dtype, copy=False)
