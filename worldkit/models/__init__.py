"""World models as LightningModules, trained standalone and saved with worldkit.checkpoints."""

from worldkit.models.mlp import LatentMLPWorldModel
from worldkit.models.rssm import RSSM

__all__ = ["RSSM", "LatentMLPWorldModel"]
