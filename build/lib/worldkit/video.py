"""Episodes as videos: the frames an env shows, written as mp4 through imageio's ffmpeg."""

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["FrameRecorder", "write_video"]


class FrameRecorder(gym.Wrapper):
    """Keeps the frames of the episodes it steps: the observations of a pixel env, the renders of
    a state env made with ``render_mode="rgb_array"``."""

    def __init__(self, env: gym.Env, frames: list[np.ndarray]):
        super().__init__(env)
        self.frames = frames

    def _keep(self, obs: Any) -> None:
        if isinstance(obs, dict):  # a Dict observation shows its first image, where it has one
            obs = next((x for x in obs.values() if np.ndim(x) == 3), None)
        obs = np.asarray(obs)
        if obs.ndim == 3 and obs.dtype == np.uint8:
            self.frames.append(obs)
            return
        if self.frames is None:
            return
        try:
            frame = self.env.render()
        except Exception as error:  # noqa: BLE001 - any env's renderer: the video is dropped, not the run
            print(f"no evaluation video: the env could not render ({error!r})")
            self.frames.clear()
            self.frames = None
            return
        if frame is not None:
            self.frames.append(np.asarray(frame))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._keep(obs)
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self._keep(out[0])
        return out


def write_video(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    """An mp4 of uint8 HWC frames (through imageio's ffmpeg), written whole or not at all."""
    import imageio.v2 as imageio

    from worldkit.files import temp_path

    if not frames:
        raise ValueError(f"no frames to write to {path}")
    tmp = temp_path(path).with_suffix(".mp4")
    with imageio.get_writer(tmp, fps=fps, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    tmp.replace(path)
    return path
