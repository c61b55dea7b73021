"""Running a policy through a world model: batched imagination, ``DreamEnv``, and acting in real envs."""

from worldkit.dream.env import DreamEnv
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
from worldkit.dream.rollout import DreamRollout, imagine_rollout

__all__ = ["DreamEnv", "DreamRollout", "LatentEpisodes", "LatentSequenceDataModule", "imagine_rollout"]
