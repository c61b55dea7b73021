"""World models as LightningModules, trained standalone and saved with worldkit.checkpoints."""

from worldkit.models.ensemble import DynamicsEnsemble
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.mlp import LatentMLPWorldModel
from worldkit.models.rssm import RSSM
from worldkit.models.vae import ConvVAE

__all__ = ["RSSM", "ConvVAE", "DynamicsEnsemble", "LatentMLPWorldModel", "MDNRNN"]
