"""Random Network Distillation (Burda et al., 2018): curiosity as the error of predicting a
fixed random network's features of a state.

A predictor trained on the states the agent has really visited matches the random target there
and not elsewhere, so its error is high on novel states. Unlike a forward model's error it does
not reward stochastic transitions, and it scores any state alone, an imagined one included.
Observations are standardised by the module's own running statistics and clipped to +-5, as in
the paper, so the random target sees inputs of unit scale.
"""

import torch
from torch import Tensor, nn

from worldkit.nets import mlp
from worldkit.normalize import EPSILON, RunningMeanStd

__all__ = ["RND"]


class RND(nn.Module):
    """A frozen random target and a trained predictor over raw observations.

    Args:
        obs_dim: Observation size.
        feature_dim: Size of the target's features (the adaptive-imagination write-up's 64).
        hidden: Width of the two hidden layers of each network.
        lr: The predictor's Adam learning rate.
        obs_clip: Standardised observations are clipped to ``[-obs_clip, obs_clip]``.
    """

    def __init__(self, obs_dim: int, feature_dim: int = 64, hidden: int = 64, lr: float = 1e-3, obs_clip: float = 5.0):
        super().__init__()
        if min(obs_dim, feature_dim, hidden) < 1 or lr <= 0 or obs_clip <= 0:
            raise ValueError("obs_dim, feature_dim, hidden, lr and obs_clip must be positive")
        self.obs_clip = obs_clip
        self.target = mlp([obs_dim, hidden, hidden, feature_dim]).requires_grad_(False)
        self.predictor = mlp([obs_dim, hidden, hidden, feature_dim])
        self.obs_rms = RunningMeanStd((obs_dim,))
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)

    def _standardise(self, obs: Tensor) -> Tensor:
        return ((obs - self.obs_rms.mean) / torch.sqrt(self.obs_rms.var + EPSILON)).clamp(-self.obs_clip, self.obs_clip).float()

    def _error(self, obs: Tensor) -> Tensor:
        x = self._standardise(obs)
        return (self.predictor(x) - self.target(x)).square().mean(-1)

    @torch.no_grad()
    def error(self, obs: Tensor) -> Tensor:
        """Per-state prediction error (B,): the curiosity of visiting ``obs``."""
        return self._error(obs.float())

    def update(self, obs: Tensor, epochs: int = 2, batch_size: int = 256,
               generator: torch.Generator | None = None) -> float:
        """Fold ``obs`` (real states only) into the statistics, then fit the predictor to them; the mean loss."""
        self.obs_rms.update(obs.double().numpy())
        losses = []
        for _ in range(epochs):
            for index in torch.randperm(len(obs), generator=generator).split(batch_size):
                loss = self._error(obs[index].float()).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
        return float(torch.stack(losses).mean()) if losses else float("nan")
