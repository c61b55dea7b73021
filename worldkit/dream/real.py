"""A controller trained in a dream, run in the real env: real observations filtered by the world
model into the features the controller learned on."""

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldkit.models.protocol import WorldModel

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


class LoopEscape:
    """Replaces a controller's action by a random one when the real observation repeats one of
    the last ``window`` observations of its episode.

    Why: a real env is deterministic where a dream is not. A controller trained in dreams, whose
    sampled frames never repeat, can turn left at one view and right at the next, or walk into a
    wall, and see the same frames again for the rest of the episode. A repeated observation is
    the sign that the agent is back where it was; a random action there ends the loop, and the
    controller acts alone everywhere else (a floor of random actions, by contrast, also slows every
    other step). Dreams never repeat a frame, so this changes nothing there.

    Args:
        window: how many of the episode's last observations to compare with (0: never escape).
        num_actions: the size of the Discrete action space.
        actions: the probabilities of the actions drawn to escape (uniform if None).
        generator: for the draws (an episode's own, to reproduce it whichever process runs it).
    """

    def __init__(self, window: int, num_actions: int, actions: "list[float] | None" = None,
                 generator: torch.Generator | None = None):
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        if actions is not None and (len(actions) != num_actions or min(actions) < 0 or not np.isclose(sum(actions), 1)):
            raise ValueError(f"actions must be {num_actions} probabilities summing to 1, got {actions}")
        self.window, self.generator, self.escapes = window, generator, 0
        self.weights = torch.full((num_actions,), 1.0 / num_actions) if actions is None \
            else torch.as_tensor(actions, dtype=torch.float32)
        self.recent: dict[int, deque[bytes]] = {}  # per env (row): its episode's last observations

    def forget(self, rows: "np.ndarray | list[int]") -> None:
        """These envs start new episodes: nothing before counts as a repeat."""
        for row in rows:
            self.recent.pop(int(row), None)

    def __call__(self, obs: np.ndarray, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` (B,) for observations ``obs`` (B, ...), with the rows whose observation
        repeats one of the last ``window`` replaced by random ones."""
        if self.window == 0:
            return actions
        repeated = []
        for row, observation in enumerate(np.asarray(obs)):
            seen, key = self.recent.setdefault(row, deque(maxlen=self.window)), observation.tobytes()
            repeated.append(key in seen)
            seen.append(key)
        if not any(repeated):
            return actions
        self.escapes += sum(repeated)
        drawn = torch.multinomial(self.weights, len(repeated), replacement=True, generator=self.generator)
        return torch.where(torch.as_tensor(repeated), drawn.to(actions.device, actions.dtype), actions)


@torch.no_grad()
def evaluate_in_real_env(world_model: WorldModel, act: Act, env: "gym.Env | str", episodes: int = 1, *,
                         seed: int = 0, max_steps: int | None = None, escape: LoopEscape | None = None) -> dict[str, Any]:
    """Run ``episodes`` real episodes (seeds ``seed``, ``seed + 1``, ...) with ``act`` on the
    world model's features of the real observations.

    Args:
        world_model: filters observations into features.
        act: the controller, features -> actions.
        env: a gymnasium env or a worldkit env spec (made here, closed after).
        episodes: how many episodes.
        seed: the first episode's reset seed.
        max_steps: cut each episode after this many steps (None: the env's own limit).
        escape: act at random where an observation repeats (:class:`LoopEscape`; Discrete actions).

    Returns:
        ``mean_return``, ``mean_length``, ``success_rate`` and per-episode ``returns``,
        ``lengths``, ``successes`` and ``escapes`` (actions replaced by ``escape``). An episode succeeds when it is terminated (not truncated)
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
        if escape is not None and not discrete:
            raise ValueError(f"escaping loops draws Discrete actions; this env acts in {env.action_space}")
        returns, lengths, successes, escapes = [], [], [], []
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            escaped = 0 if escape is None else escape.escapes
            if escape is not None:
                escape.forget([0])
            state = world_model.observe(world_model.initial_state(1), None, torch.as_tensor(obs)[None])
            total, steps, success = 0.0, 0, False
            while max_steps is None or steps < max_steps:
                action = act(world_model.features(state))
                if escape is not None:
                    action = escape(obs[None], action)
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
            escapes.append(0 if escape is None else escape.escapes - escaped)
    finally:
        if owned:
            env.close()
    return {"mean_return": float(np.mean(returns)), "mean_length": float(np.mean(lengths)),
            "success_rate": float(np.mean(successes)), "returns": returns, "lengths": lengths, "successes": successes,
            "escapes": escapes}
