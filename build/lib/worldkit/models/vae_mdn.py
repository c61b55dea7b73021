"""World Models' V and M composed into one :class:`~worldkit.models.protocol.WorldModel`.

The state is (z, h, c): the latent of the current frame and the LSTM's output and cell after
the previous step. A controller sees [z, h]. Dreams decode z alone, never a VAE's skips.
"""

import os
from typing import Any, NamedTuple

import gymnasium as gym
import torch
from torch import nn

from worldkit.checkpoints import checkpointable
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import world_model
from worldkit.models.vae import ConvVAE


class MDNState(NamedTuple):
    """z (B, Z), and the LSTM's output h and cell c (B, H) after the previous step."""

    z: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor


@world_model
@checkpointable
class VAEMDNWorldModel(nn.Module):
    """V (a :class:`ConvVAE`) and M (an :class:`MDNRNN`) behind the WorldModel calls.

    Build it from trained parts with :meth:`compose`; it saves and loads as one checkpoint.

    Args:
        vae: the VAE's hyperparameters.
        mdnrnn: the MDN-RNN's hyperparameters.
    """

    def __init__(self, vae: dict[str, Any], mdnrnn: dict[str, Any]):
        super().__init__()
        self.hparams = {"vae": dict(vae), "mdnrnn": dict(mdnrnn)}
        self.vae, self.mdnrnn = ConvVAE(**vae), MDNRNN(**mdnrnn)
        if self.vae.hparams.latent_dim != self.mdnrnn.hparams.latent_dim:
            raise ValueError(f"the VAE's latent_dim ({self.vae.hparams.latent_dim}) differs from the MDN-RNN's "
                             f"({self.mdnrnn.hparams.latent_dim})")
        self.env_spec: str | None = None

    @classmethod
    def compose(cls, vae: ConvVAE, mdnrnn: MDNRNN) -> "VAEMDNWorldModel":
        """A world model holding copies of trained V and M (the env spec is V's)."""
        model = cls(dict(vae.hparams), dict(mdnrnn.hparams))
        model.vae.load_state_dict(vae.state_dict())
        model.mdnrnn.load_state_dict(mdnrnn.state_dict())
        model.env_spec = getattr(vae, "env_spec", None)
        return model.to(vae.device).eval()

    @classmethod
    def from_parts(cls, vae_dir: "str | os.PathLike", mdnrnn_dir: "str | os.PathLike") -> "VAEMDNWorldModel":
        """Compose V and M from their own checkpoint folders."""
        return cls.compose(ConvVAE.from_pretrained(vae_dir), MDNRNN.from_pretrained(mdnrnn_dir))

    @property
    def feature_dim(self) -> int:
        return self.vae.hparams.latent_dim + self.mdnrnn.hparams.hidden_dim

    @property
    def action_space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.mdnrnn.hparams.num_actions)

    def initial_state(self, batch_size: int) -> MDNState:
        device = self.mdnrnn.head.weight.device
        z = torch.zeros(batch_size, self.vae.hparams.latent_dim, device=device)
        h = torch.zeros(batch_size, self.mdnrnn.hparams.hidden_dim, device=device)
        return MDNState(z, h, h.clone())

    def _advance(self, state: MDNState, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """M reads (z, a): the LSTM's next output and cell."""
        lstm_state = (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous())
        inputs = torch.cat([state.z, nn.functional.one_hot(action.long(), self.mdnrnn.hparams.num_actions)
                            .to(state.z.dtype)], -1)
        _, (h, c) = self.mdnrnn.lstm(inputs.unsqueeze(1), lstm_state)
        return h.squeeze(0), c.squeeze(0)

    def observe(self, state: MDNState, action: torch.Tensor | None, obs: torch.Tensor) -> MDNState:
        """z from V's posterior mean of the frame; h, c advanced by the action that led to it."""
        h, c = (state.h, state.c) if action is None else self._advance(state, action)
        return MDNState(self.vae.embed(obs.to(h.device)), h, c)

    def imagine(self, state: MDNState, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[MDNState, torch.Tensor, torch.Tensor]:
        """z' sampled from M's mixture with ``temperature``; the expected reward and the continue
        probability of the step that led there, from M's outcome head on (h, z')."""
        h, c = self._advance(state, action)
        z = self.mdnrnn.mixture(h).sample(temperature, generator)
        outcome = self.mdnrnn.outcome(h, z)
        return MDNState(z, h, c), outcome.expected_reward(), torch.sigmoid(-outcome.done_logit)

    def features(self, state: MDNState) -> torch.Tensor:
        """[z, h], as World Models' controller reads."""
        return torch.cat([state.z, state.h], -1)

    def decode(self, state: MDNState) -> torch.Tensor:
        return self.vae.decode(state.z)
