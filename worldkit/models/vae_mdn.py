"""World Models' V and M composed into one :class:`~worldkit.models.protocol.WorldModel`.

The state is (z, h, c): the latent of the current frame and the LSTM's output and cell after
the previous step. A controller sees [z, h]. Dreams decode z alone, never a VAE's skips.

M may be an ensemble: several MDN-RNNs trained on the same episodes from different starting
weights. The first (the lead) gives the controller its h; in a dream each step's next z comes
from a member drawn at random for each rollout, and the reward and continue probability are the
members' mean. Where the members' predictions of the next z spread further apart than a quantile
of their spread on real episodes (``halt_above``, set by :meth:`VAEMDNWorldModel.calibrate_halt`),
the dream ends there with no reward, as MOReL's unknown-state halt, so that one member's error (on
Sidewalk, the box appearing in front of a wall) pays less to a controller that seeks it. How
well that works on Sidewalk: docs/world_models.md.
"""

import os
from typing import TYPE_CHECKING, Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from worldkit.checkpoints import checkpointable
from worldkit.models.mdnrnn import MDNRNN, Mixture
from worldkit.models.protocol import world_model
from worldkit.models.vae import ConvVAE

if TYPE_CHECKING:
    from worldkit.dream.latents import LatentEpisodes


class MDNState(NamedTuple):
    """z (B, Z), and the LSTM's output h and cell c (B, H) after the previous step; with an
    ensemble of M members, each member's side by side (B, members * H), the lead's first."""

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
        mdnrnn: the MDN-RNN's hyperparameters (every member's).
        members: how many MDN-RNNs M holds (1: World Models' single M).
    """

    def __init__(self, vae: dict[str, Any], mdnrnn: dict[str, Any], members: int = 1):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be at least 1, got {members}")
        self.hparams = {"vae": dict(vae), "mdnrnn": dict(mdnrnn), **({"members": members} if members > 1 else {})}
        self.vae, self.mdnrnn = ConvVAE(**vae), MDNRNN(**mdnrnn)
        if self.vae.hparams.latent_dim != self.mdnrnn.hparams.latent_dim:
            raise ValueError(f"the VAE's latent_dim ({self.vae.hparams.latent_dim}) differs from the MDN-RNN's "
                             f"({self.mdnrnn.hparams.latent_dim})")
        self.others = nn.ModuleList(MDNRNN(**mdnrnn) for _ in range(members - 1))
        if members > 1:  # a single M has no spread to halt on (and its checkpoints stay as they were)
            self.register_buffer("halt_above", torch.tensor(float("inf")))
        self.env_spec: str | None = None

    @classmethod
    def compose(cls, vae: ConvVAE, mdnrnn: MDNRNN, *others: MDNRNN) -> "VAEMDNWorldModel":
        """A world model holding copies of trained V and M, or of an ensemble of Ms, the lead
        ``mdnrnn`` first (the env spec is V's)."""
        model = cls(dict(vae.hparams), dict(mdnrnn.hparams), 1 + len(others))
        model.vae.load_state_dict(vae.state_dict())
        for member, trained in zip(model.members, (mdnrnn, *others)):
            if dict(trained.hparams) != dict(mdnrnn.hparams):
                raise ValueError("the members of an ensemble M must share their hyperparameters")
            member.load_state_dict(trained.state_dict())
        model.env_spec = getattr(vae, "env_spec", None)
        return model.to(vae.device).eval()

    @property
    def members(self) -> list[MDNRNN]:
        """M's MDN-RNNs, the lead first."""
        return [self.mdnrnn, *self.others]

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
        h = torch.zeros(batch_size, len(self.members) * self.mdnrnn.hparams.hidden_dim, device=device)
        return MDNState(z, h, h.clone())

    def _advance(self, state: MDNState, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member reads (z, a): the LSTMs' next outputs and cells, side by side."""
        inputs = torch.cat([state.z, nn.functional.one_hot(action.long(), self.mdnrnn.hparams.num_actions)
                            .to(state.z.dtype)], -1).unsqueeze(1)
        if not self.others:
            _, (h, c) = self.mdnrnn.lstm(inputs, (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous()))
            return h.squeeze(0), c.squeeze(0)
        size = self.mdnrnn.hparams.hidden_dim
        steps = [member.lstm(inputs, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))[1]
                 for member, h, c in zip(self.members, state.h.split(size, -1), state.c.split(size, -1))]
        return torch.cat([h.squeeze(0) for h, _ in steps], -1), torch.cat([c.squeeze(0) for _, c in steps], -1)

    def spread(self, h: torch.Tensor) -> torch.Tensor:
        """How far the members' expected next z lie apart (...): the root mean over latent dimensions
        of their variance across members, from the members' LSTM outputs ``h`` (..., members * H)."""
        return _spread(self._mixtures(h))

    def _mixtures(self, h: torch.Tensor) -> Mixture:
        """Every member's density over the next z, stacked: fields (..., members, Z, K)."""
        parts = h.split(self.mdnrnn.hparams.hidden_dim, -1)
        return Mixture(*(torch.stack(field, -3) for field in
                         zip(*(member.mixture(part) for member, part in zip(self.members, parts)))))

    @torch.no_grad()
    def calibrate_halt(self, latents: "LatentEpisodes", quantile: float = 0.99, batch_size: int = 256) -> float:
        """Set ``halt_above`` to the ``quantile`` of the members' spread over every step of the real
        episodes ``latents``: dreams then halt only where the members disagree more than on all but
        ``1 - quantile`` of real steps."""
        from torch.utils.data import DataLoader

        from worldkit.dream.latents import LatentWindows

        if not self.others:
            raise ValueError("halting needs an ensemble M (members >= 2): one member has no spread")
        if not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        longest = max(len(episode["action"]) for episode in latents.episodes)
        windows = LatentWindows(latents, longest, np.arange(len(latents)))  # whole episodes, padded
        device, spreads = self.mdnrnn.head.weight.device, []
        for batch in DataLoader(windows, batch_size=batch_size):
            z, action = batch["mu"][:, :-1].to(device), batch["action"].to(device)
            h = torch.cat([member(z, action)[1] for member in self.members], -1)
            spreads.append(self.spread(h)[batch["mask"].to(device)])
        self.halt_above.fill_(torch.quantile(torch.cat(spreads).float(), quantile).item())
        return self.halt_above.item()

    def observe(self, state: MDNState, action: torch.Tensor | None, obs: torch.Tensor) -> MDNState:
        """z from V's posterior mean of the frame; h, c advanced by the action that led to it."""
        h, c = (state.h, state.c) if action is None else self._advance(state, action)
        return MDNState(self.vae.embed(obs.to(h.device)), h, c)

    def imagine(self, state: MDNState, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[MDNState, torch.Tensor, torch.Tensor]:
        """z' sampled from M's mixture with ``temperature``; the expected reward and the continue
        probability of the step that led there, from M's outcome head on (h, z')."""
        h, c = self._advance(state, action)
        if not self.others:
            z = self.mdnrnn.mixture(h).sample(temperature, generator)
            outcome = self.mdnrnn.outcome(h, z)
            return MDNState(z, h, c), outcome.expected_reward(), torch.sigmoid(-outcome.done_logit)
        mixtures = self._mixtures(h)
        rows = torch.arange(len(h), device=h.device)
        drawn = torch.randint(len(self.members), (len(h),), generator=generator, device=h.device)
        z = Mixture(*(field[rows, drawn] for field in mixtures)).sample(temperature, generator)
        outcomes = [member.outcome(part, z) for member, part in
                    zip(self.members, h.split(self.mdnrnn.hparams.hidden_dim, -1))]
        reward = torch.stack([outcome.expected_reward() for outcome in outcomes]).mean(0)
        continues = torch.stack([torch.sigmoid(-outcome.done_logit) for outcome in outcomes]).mean(0)
        known = (_spread(mixtures) <= self.halt_above).to(reward.dtype)
        return MDNState(z, h, c), reward * known, continues * known

    def features(self, state: MDNState) -> torch.Tensor:
        """[z, h] (the lead member's h), as World Models' controller reads."""
        return torch.cat([state.z, state.h[:, :self.mdnrnn.hparams.hidden_dim]], -1)

    def decode(self, state: MDNState) -> torch.Tensor:
        return self.vae.decode(state.z)


def _spread(mixtures: Mixture) -> torch.Tensor:
    """Root mean over latent dimensions of the variance, across members, of each member's expected
    next z; ``mixtures`` with fields (..., members, Z, K)."""
    expected = (torch.softmax(mixtures.logit_pi, -1) * mixtures.mu).sum(-1)
    return expected.var(-2, unbiased=False).mean(-1).sqrt()
