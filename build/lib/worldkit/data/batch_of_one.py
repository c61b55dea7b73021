"""One env seen as a vector env of one, without gymnasium's vector machinery.

A collector of a single env pays ~12% of Walker2d's step rate for ``SyncVectorEnv`` and
``RecordEpisodeStatistics`` (copies, info merging, statistics it does not read). This
gives ``collect`` the part of the vector API it uses, with the same semantics: batched
arrays, same-step autoreset, ``infos["final_obs"]``, and the seeding of env 0 of a vector env.
"""

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from worldkit.observations import obs_map


class BatchOfOne:
    """Wrap ``env`` so that ``reset``/``step`` take and return batches of one.

    With ``autoreset=False`` a finished episode is not reset (nor ``final_obs`` set): the caller
    resets, with a seed of its choice for each episode.
    """

    num_envs = 1

    def __init__(self, env: gym.Env, autoreset: bool = True):
        self.env, self.autoreset = env, autoreset
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.action_space = batch_space(env.action_space, 1)

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        obs, _ = self.env.reset(seed=seed)
        return obs_map(lambda x: np.array(x)[None], obs), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, _ = self.env.step(actions[0])
        infos = {}
        if self.autoreset and (terminated or truncated):
            infos["final_obs"] = [obs_map(np.array, obs)]
            obs, _ = self.env.reset()
        batch = obs_map(lambda x: np.array(x)[None], obs)
        return batch, np.array([reward]), np.array([terminated]), np.array([truncated]), infos

    def close(self) -> None:
        self.env.close()
