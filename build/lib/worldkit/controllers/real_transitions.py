"""The real transitions a model-based learner keeps: recorded raw, beside PPO, for its world model.

PPO's rollout holds observations normalised with statistics that drift as training goes on, and
only the latest rollout. A world model meant for other controllers too must learn raw
dynamics from every real step, so :class:`RecordTransitions` wraps the vector env and files each
step, unnormalised and with the true final observation of an ended episode, in a
:class:`TransitionReplay`. Every ``holdout_every``-th transition is held out of training, so the
model's confidence is measured on data it never fitted.
"""

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

__all__ = ["RecordTransitions", "TransitionReplay"]

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class TransitionReplay:
    """Every real transition so far, in arrays that grow as needed (rows in step-major order).

    Args:
        obs_dim: Observation size.
        action_space: The env's single action space (a 1-D Box or Discrete).
        holdout_every: Row ``i`` is held out when ``i % holdout_every == holdout_every - 1``.
    """

    def __init__(self, obs_dim: int, action_space: gym.Space, holdout_every: int = 10):
        if holdout_every < 2:
            raise ValueError(f"holdout_every must be at least 2 (1 would hold out everything), got {holdout_every}")
        self.holdout_every = holdout_every
        discrete = isinstance(action_space, gym.spaces.Discrete)
        shapes = {"obs": (obs_dim,), "action": () if discrete else action_space.shape, "reward": (),
                  "next_obs": (obs_dim,), "terminated": ()}
        dtypes = {"action": np.int64 if discrete else np.float32, "terminated": np.float32}
        self._data = {k: np.zeros((1024, *shape), dtypes.get(k, np.float32)) for k, shape in shapes.items()}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Append a batch of transitions (one row per env)."""
        rows = len(obs)
        if self.size + rows > len(self._data["obs"]):
            capacity = max(2 * len(self._data["obs"]), self.size + rows)
            for key, array in self._data.items():
                grown = np.zeros((capacity, *array.shape[1:]), array.dtype)
                grown[: self.size] = array[: self.size]
                self._data[key] = grown
        for key, value in zip(_FIELDS, (obs, action, reward, next_obs, terminated)):
            self._data[key][self.size : self.size + rows] = value
        self.size += rows

    @property
    def num_train(self) -> int:
        """Rows the model may train on (the rest are held out)."""
        k = self.holdout_every
        return self.size // k * (k - 1) + min(self.size % k, k - 1)

    def _rows(self, index: np.ndarray) -> dict[str, Tensor]:
        return {key: torch.from_numpy(array[index]) for key, array in self._data.items()}

    def sample_train(self, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, Tensor]:
        """Training rows drawn uniformly, e.g. shape (members, batch): each member its own minibatch."""
        j = torch.randint(self.num_train, shape, generator=generator).numpy()
        k = self.holdout_every
        return self._rows(j // (k - 1) * k + j % (k - 1))

    def train_rows(self, limit: int | None = None) -> dict[str, Tensor]:
        """The latest ``limit`` training rows (all by default), e.g. to set a model's normaliser."""
        index = np.flatnonzero(np.arange(self.size) % self.holdout_every != self.holdout_every - 1)
        return self._rows(index[-limit:] if limit else index)

    def held_out(self, limit: int | None = None) -> dict[str, Tensor]:
        """The latest ``limit`` held-out rows."""
        index = np.arange(self.holdout_every - 1, self.size, self.holdout_every)
        return self._rows(index[-limit:] if limit else index)

    def latest(self, rows: int) -> dict[str, Tensor]:
        """The last ``rows`` transitions, in the order they happened."""
        return self._rows(np.arange(max(0, self.size - rows), self.size))

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, **{k: torch.from_numpy(v[: self.size].copy()) for k, v in self._data.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = 0
        self.add(*(state[k].numpy() for k in _FIELDS))


class RecordTransitions(gym.vector.VectorWrapper):
    """A SAME_STEP vector env that also files every step's raw transition in a replay.

    Where an episode ended, the recorded next observation is the true final one
    (``infos["final_obs"]``), and ``terminated`` (not a time limit) is the done target.
    """

    def __init__(self, env: gym.vector.VectorEnv, replay: TransitionReplay):
        super().__init__(env)
        self.replay = replay
        self._obs: np.ndarray | None = None

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = np.array(obs, dtype=np.float32)
        return obs, info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        next_obs = np.array(obs, dtype=np.float32)
        ended = np.logical_or(terminated, truncated)
        if ended.any():
            next_obs[ended] = np.stack(info["final_obs"][ended]).astype(np.float32)
        self.replay.add(self._obs, actions, reward, next_obs, terminated)
        self._obs = np.array(obs, dtype=np.float32)
        return obs, reward, terminated, truncated, info
