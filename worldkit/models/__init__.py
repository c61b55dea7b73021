"""World models as LightningModules, trained standalone and saved with worldkit.checkpoints."""

from worldkit.models.mlp import LatentMLPWorldModel

__all__ = ["LatentMLPWorldModel"]
