"""A controller trained in a dream, run in the real env: real observations filtered by the world
model into the features the controller learned on."""

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldkit.dream.protocol import WorldModel

Act = Callable[[torch.Tensor], torch.Tensor]
"""features (B, F) -> actions (B,) or (B, A)"""


class SpaceMismatchError(ValueError):
    """A world model and an env (or a controller) disagree about observations or actions."""


def check_compatible(world_model: WorldModel, env: gym.Env) -> None:
    """Raise :class:`SpaceMismatchError`, naming both, unless the env's actions (and, where the
    model records them, observation shape) are the model's."""
    mine, theirs = world_model.action_space, env.action_space
    if not same_actions(mine, theirs):
        raise SpaceMismatchError(f"the world model acts in {mine} but the env in {theirs}: "
                                 "use a world model trained on this env")
    model_obs = getattr(world_model, "observation_space", None)
    if model_obs is not None and tuple(model_obs.shape) != tuple(env.observation_space.shape):
        raise SpaceMismatchError(f"the world model reads observations of shape {tuple(model_obs.shape)} but the "
                                 f"env gives {tuple(env.observation_space.shape)}: use a world model trained on "
                                 "this env (same obs=state|pixels and size)")


def same_actions(a: gym.Space, b: gym.Space) -> bool:
    """Same kind, shape and bounds (dtypes may differ: dm-control's are float64)."""
    if isinstance(a, gym.spaces.Discrete) and isinstance(b, gym.spaces.Discrete):
        return a.n == b.n and a.start == b.start
    return (isinstance(a, gym.spaces.Box) and isinstance(b, gym.spaces.Box) and a.shape == b.shape
            and np.allclose(a.low, b.low) and np.allclose(a.high, b.high))


@torch.no_grad()
def evaluate_in_real_env(world_model: WorldModel, act: Act, env: "gym.Env | str", episodes: int = 1, *,
                         seed: int = 0, max_steps: int | None = None) -> dict[str, Any]:
    """Run ``episodes`` real episodes (seeds ``seed``, ``seed + 1``, ...) with ``act`` on the
    world model's features of the real observations.

    Args:
        world_model: filters observations into features.
        act: the controller, features -> actions.
        env: a gymnasium env or a worldkit env spec (made here, closed after).
        episodes: how many episodes.
        seed: the first episode's reset seed.
        max_steps: cut each episode after this many steps (None: the env's own limit).

    Returns:
        ``mean_return``, ``mean_length``, ``success_rate`` and per-episode ``returns``,
        ``lengths`` and ``successes``. An episode succeeds when it is terminated (not truncated)
        with a positive last reward, as MiniWorld's tasks pay only on success.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    owned = isinstance(env, str)
    if owned:
        from worldkit.envs import make_env

        env = make_env(env)
    try:
        check_compatible(world_model, env)
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        returns, lengths, successes = [], [], []
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            state = world_model.observe(world_model.initial_state(1), None, torch.as_tensor(obs)[None])
            total, steps, success = 0.0, 0, False
            while max_steps is None or steps < max_steps:
                action = act(world_model.features(state))
                env_action = int(action[0]) if discrete else np.clip(
                    action[0].cpu().numpy().astype(env.action_space.dtype), env.action_space.low, env.action_space.high)
                obs, reward, terminated, truncated, _ = env.step(env_action)
                total, steps = total + float(reward), steps + 1
                if terminated or truncated:
                    success = bool(terminated and reward > 0)
                    break
                state = world_model.observe(state, action, torch.as_tensor(obs)[None])
            returns.append(total)
            lengths.append(steps)
            successes.append(success)
    finally:
        if owned:
            env.close()
    return {"mean_return": float(np.mean(returns)), "mean_length": float(np.mean(lengths)),
            "success_rate": float(np.mean(successes)), "returns": returns, "lengths": lengths, "successes": successes}
