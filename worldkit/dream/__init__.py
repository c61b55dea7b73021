"""Dreaming: the WorldModel protocol, world models built on it, and batched imagination rollouts."""

from worldkit.dream.env import DreamEnv
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
from worldkit.dream.protocol import State, WorldModel
from worldkit.dream.rollout import DreamRollout, imagine_rollout, repeat_state, select_state
from worldkit.dream.vae_mdn import MDNState, VAEMDNWorldModel

__all__ = [
    "DreamEnv",
    "DreamRollout",
    "LatentEpisodes",
    "LatentSequenceDataModule",
    "MDNState",
    "State",
    "VAEMDNWorldModel",
    "WorldModel",
    "imagine_rollout",
    "repeat_state",
    "select_state",
]
