"""Wrappers that give every family the same conventions: float32 states, uint8 HWC pixels,
and an action repeat that sits below the pixel wrapper, so a held action renders one frame."""

import gymnasium as gym
import numpy as np
from PIL import Image


class ActionRepeat(gym.Wrapper):
    """Each action held for ``repeat`` env steps, rewards summed (Dreamer's setting for dm-control)."""

    def __init__(self, env: gym.Env, repeat: int):
        if repeat < 1:
            raise ValueError(f"an action must be repeated at least once, got repeat={repeat}")
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class Float32Observation(gym.ObservationWrapper):
    """Cast float64 state vectors (MuJoCo, dm-control) to float32, the dtype models use."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32
        )

    def observation(self, observation) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)


class PixelObservation(gym.ObservationWrapper):
    """Replace the observation with the env's rendered frame (uint8, HWC)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        env.reset()
        frame = np.asarray(env.render())
        self.observation_space = gym.spaces.Box(0, 255, frame.shape, np.uint8)

    def observation(self, observation) -> np.ndarray:
        return np.ascontiguousarray(self.env.render(), dtype=np.uint8)


class ResizeFrames(gym.ObservationWrapper):
    """Resize uint8 HWC frames to (height, width) with area-averaging, for models that want
    another size than the env renders (e.g. 64x64 for a VAE trained on MiniWorld's 60x80)."""

    def __init__(self, env: gym.Env, size: tuple[int, int]):
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3):
            raise ValueError(f"ResizeFrames needs uint8 HWC frames, got {space}")
        self.size = (int(size[0]), int(size[1]))
        self.observation_space = gym.spaces.Box(0, 255, (*self.size, space.shape[2]), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return resize_frame(observation, self.size)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one uint8 HWC frame to (height, width)."""
    if frame.shape[:2] == tuple(size):
        return frame
    image = Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8)
