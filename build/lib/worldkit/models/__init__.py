"""Every world model worldkit has, and the WorldModel protocol they share.

World models are trained standalone (LightningModules, or composites of them) and saved with
worldkit.checkpoints. A class declared with ``@world_model`` is registered in ``WORLD_MODELS`` and put through the conformance tests (tests/test_world_model_protocol.py).
"""

from worldkit.models.ensemble import DynamicsEnsemble
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.mlp import LatentMLPWorldModel
from worldkit.models.protocol import (
           WORLD_MODELS,
           State,
           WorldModel,
           repeat_state,
           replace_rows,
           select_state,
           world_model,
)
from worldkit.models.rssm import RSSM
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import MDNState, VAEMDNWorldModel

__all__ = ["MDNRNN", "RSSM", "WORLD_MODELS", "ConvVAE", "DynamicsEnsemble", "LatentMLPWorldModel", "MDNState", "State",
           "VAEMDNWorldModel", "WorldModel", "repeat_state", "replace_rows", "select_state", "world_model"]
