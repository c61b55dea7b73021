"""DreamEnv: any world model as a gymnasium vector env, so any controller can train in the dream.

Observations are the world model's features; rewards and ends are its predictions. Each episode
starts from a state drawn from a pool filtered from real observations (so dreams begin where
real episodes go), ends when the continue head says so (sampled from its probability), or by the
env's own rule on the dreamed observation where one is given, and is truncated after ``horizon``
steps, which a learner should bootstrap from. Autoreset is SAME_STEP, as worldkit's PPO expects:
a finished env's returned observation already starts its next dream, and the true last one is in
``infos["final_obs"]``.
"""

from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldkit.envs.termination import TerminationRule
from worldkit.models.protocol import State, WorldModel, select_state


class DreamEnv(gym.vector.VectorEnv):
    """``num_envs`` dreams stepped as one batch of the world model.

    Args:
        world_model: any :class:`~worldkit.models.protocol.WorldModel`.
        start_states: a batch of states to start dreams from, e.g. :func:`real_start_states`.
        num_envs: dreams stepped together.
        horizon: steps before a dream is truncated.
        temperature: the world model's sampling temperature.
        sample_ends: end dreams by sampling the continue probability; False never terminates
            them (the horizon alone ends them).
        ends: a rule that says from the dreamed observation (``world_model.decode``) which dreams
            ended, such as :func:`worldkit.envs.termination.termination_rule`; it replaces the
            continue head.
        penalty: subtract ``penalty`` times the world model's uncertainty about each step from its
            reward (MOPO-style pessimism), so steps the model only guesses pay a learner less.
            Needs a world model with an ``uncertainty(state, action)`` method, such as an ensemble.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, world_model: WorldModel, start_states: State, num_envs: int = 1, *, horizon: int = 200,
                 temperature: float = 1.0, sample_ends: bool = True, ends: TerminationRule | None = None,
                 penalty: float = 0.0):
        if num_envs < 1 or horizon < 1:
            raise ValueError(f"num_envs and horizon must be at least 1, got {num_envs} and {horizon}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        if penalty and not hasattr(world_model, "uncertainty"):
            raise ValueError(f"penalty needs a world model that knows its uncertainty (a dynamics ensemble); "
                             f"{type(world_model).__name__} does not: leave penalty at 0")
        if not len(start_states[0]):
            raise ValueError("start_states is empty: filter some real observations first (real_start_states)")
        self.world_model, self.pool = world_model, start_states
        self.num_envs, self.horizon, self.temperature, self.sample_ends = num_envs, horizon, temperature, sample_ends
        self.penalty, self.ends = penalty, ends
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (world_model.feature_dim,), np.float32)
        self.single_action_space = world_model.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.device = start_states[0].device
        self._generator = torch.Generator(self.device)
        self._rng = np.random.default_rng()
        self._generator.manual_seed(int(self._rng.integers(2**63)))
        self._state: State | None = None
        self._steps = np.zeros(num_envs, dtype=np.int64)
        with torch.no_grad():  # one dreamed step now, so a model that cannot dream fails here, not mid-training
            world_model.imagine(select_state(start_states, torch.arange(1, device=self.device)),
                                self._actions(self.action_space.sample())[:1], temperature=temperature,
                                generator=torch.Generator(self.device).manual_seed(0))

    @torch.no_grad()
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._generator.manual_seed(seed)
        self._state = self._draw(self.num_envs)
        self._steps[:] = 0
        return self._observe(self._state), {}

    @torch.no_grad()
    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        actions = self._actions(actions)
        state, reward, continues = self.world_model.imagine(self._state, actions,
                                                            temperature=self.temperature, generator=self._generator)
        if self.penalty:
            reward = reward - self.penalty * self.world_model.uncertainty(self._state, actions)
        self._steps += 1
        obs = self._observe(state)
        continues = continues.float().cpu().numpy()
        if self.ends is not None:
            terminated = self.ends(self.world_model.decode(state)).cpu().numpy()
        elif self.sample_ends:
            terminated = self._rng.random(self.num_envs) >= continues
        else:
            terminated = np.zeros(self.num_envs, bool)
        truncated = (self._steps >= self.horizon) & ~terminated
        infos: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            ended = np.flatnonzero(done)
            infos["final_obs"] = np.empty(self.num_envs, dtype=object)  # gymnasium's layout: one array per env or None
            for i in ended:
                infos["final_obs"][i] = obs[i].copy()
            infos["_final_obs"] = done
            fresh = self._draw(len(ended))
            index = torch.as_tensor(ended, device=self.device)
            state = _like(state, [field.index_copy(0, index, new) for field, new in zip(state, fresh)])
            obs = obs.copy()
            obs[ended] = self._observe(fresh)
            self._steps[ended] = 0
        self._state = state
        return obs, reward.float().cpu().numpy(), terminated, truncated, infos

    def single_env(self) -> "SingleDreamEnv":
        """A one-dream ``gymnasium.Env`` over the same world model and start states."""
        return SingleDreamEnv(self.world_model, self.pool, horizon=self.horizon, temperature=self.temperature,
                              sample_ends=self.sample_ends, ends=self.ends, penalty=self.penalty)

    def _draw(self, n: int) -> State:
        index = torch.as_tensor(self._rng.integers(len(self.pool[0]), size=n), device=self.device)
        return select_state(self.pool, index)

    def _observe(self, state: State) -> np.ndarray:
        return self.world_model.features(state).float().cpu().numpy()

    def _actions(self, actions: Any) -> torch.Tensor:
        actions = np.asarray(actions)
        space = self.single_action_space
        if actions.shape != (self.num_envs, *space.shape):
            raise ValueError(f"this DreamEnv takes actions of shape {(self.num_envs, *space.shape)} for {space}, "
                             f"got {actions.shape}")
        if isinstance(space, gym.spaces.Discrete):
            return torch.as_tensor(actions.astype(np.int64), device=self.device)
        return torch.as_tensor(np.clip(actions, space.low, space.high), dtype=torch.float32, device=self.device)


class SingleDreamEnv(gym.Env):
    """One dream as a ``gymnasium.Env`` (passes ``gymnasium.utils.env_checker.check_env``)."""

    def __init__(self, world_model: WorldModel, start_states: State, **kwargs: Any):
        self.dreams = DreamEnv(world_model, start_states, 1, **kwargs)
        self.observation_space = self.dreams.single_observation_space
        self.action_space = self.dreams.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs, info = self.dreams.reset(seed=seed)
        return obs[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, infos = self.dreams.step(np.asarray(action)[None])
        last = infos["final_obs"][0] if "final_obs" in infos else obs[0]
        return last, float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}


@torch.no_grad()
def real_start_states(world_model: WorldModel, episodes: Iterable[dict[str, np.ndarray]], *,
                      steps_per_episode: int | None = None) -> State:
    """Every state the world model reaches while filtering real episodes (from their first
    observation, at most ``steps_per_episode`` steps each), as one batch: where dreams start.

    Args:
        world_model: the model that filters.
        episodes: dicts with ``obs`` (T+1, ...) and ``action`` (T, ...), e.g. an ``EpisodeStore``.
        steps_per_episode: filter at most this many steps of each episode (None: all).
    """
    episodes = list(episodes)
    if not episodes:
        raise ValueError("no episodes to start dreams from")
    lengths = [len(e["action"]) if steps_per_episode is None else min(len(e["action"]), steps_per_episode)
               for e in episodes]
    longest = max(lengths)
    obs = np.stack([_padded(e["obs"][: n + 1], longest + 1) for e, n in zip(episodes, lengths)])
    actions = np.stack([_padded(e["action"][:n], longest) for e, n in zip(episodes, lengths)])
    device = world_model.features(world_model.initial_state(1)).device
    discrete = isinstance(world_model.action_space, gym.spaces.Discrete)
    actions_t = torch.as_tensor(actions.astype(np.int64 if discrete else np.float32), device=device)
    obs_t = torch.as_tensor(obs, device=device)
    valid = torch.as_tensor(np.arange(longest + 1)[None, :] <= np.array(lengths)[:, None], device=device)
    state = world_model.observe(world_model.initial_state(len(episodes)), None, obs_t[:, 0])
    kept = [[field[valid[:, 0]] for field in state]]
    for t in range(longest):
        state = world_model.observe(state, actions_t[:, t], obs_t[:, t + 1])
        kept.append([field[valid[:, t + 1]] for field in state])
    return _like(state, [torch.cat(parts) for parts in zip(*kept)])


def _like(state: State, fields: list[torch.Tensor]) -> State:
    """A state of the same kind (NamedTuple or plain tuple) holding ``fields``."""
    return type(state)(*fields) if hasattr(state, "_fields") else tuple(fields)


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` padded to ``size`` along the first axis by repeating its last row."""
    return np.concatenate([array, np.repeat(array[-1:], size - len(array), 0)]) if len(array) < size else array
