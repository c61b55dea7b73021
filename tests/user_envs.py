"""A user's own env, registered with gymnasium on import, as a user's package would do
(``--env_module=user_envs``): a corridor whose agent must walk right to the goal."""

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Position in [0, 1]; actions: 0 left, 1 stay, 2 right; +1 on reaching the right end."""

    observation_space = gym.spaces.Box(-1.0, 2.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.steps = 0.2 * self.np_random.random(), 0
        return self._obs(), {}

    def step(self, action):
        self.position = float(np.clip(self.position + 0.1 * (int(action) - 1), 0.0, 1.0))
        self.steps += 1
        reached = self.position >= 1.0
        return self._obs(), float(reached), reached, self.steps >= 50 and not reached, {}

    def _obs(self):
        return np.array([self.position, self.steps / 50], dtype=np.float32)


if "WorldkitCorridor-v0" not in gym.registry:
    gym.register("WorldkitCorridor-v0", entry_point=Corridor)


class SeeingCorridor(Corridor):
    """The corridor seen two ways at once: its state vector and a 16x16 picture of it (a Dict)."""

    observation_space = gym.spaces.Dict({
        "state": gym.spaces.Box(-1.0, 2.0, (2,), np.float32),
        "image": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
    })

    def _obs(self):
        image = np.zeros((16, 16, 3), dtype=np.uint8)
        image[:, : 1 + int(15 * self.position)] = 255
        return {"state": super()._obs(), "image": image}


if "WorldkitSeeingCorridor-v0" not in gym.registry:
    gym.register("WorldkitSeeingCorridor-v0", entry_point=SeeingCorridor)
