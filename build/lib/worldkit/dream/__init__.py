"""Running a policy through a world model: one imagination path, ``DreamEnv``, and acting in real envs."""

from worldkit.dream.driver import LoopEscape, WorldModelPolicy, evaluate_in_real_env
from worldkit.dream.env import DreamEnv
from worldkit.dream.imagine import Dream, imagine
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule

__all__ = ["Dream", "DreamEnv", "LatentEpisodes", "LatentSequenceDataModule", "LoopEscape", "WorldModelPolicy",
           "evaluate_in_real_env", "imagine"]
