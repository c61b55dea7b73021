"""Intrinsic Curiosity Module (Pathak et al., 2017): the PPO+ICM baseline's curiosity.

A feature encoder phi is trained by an inverse model (predict a from phi(s), phi(s')) so it keeps
what the agent controls; a forward model predicts phi(s') from (phi(s), a), and its error is the
curiosity bonus r_int = eta * ||phi(s') - f(phi(s), a)||^2 / 2. The module knows transitions only;
:class:`worldkit.controllers.curiosity_hook.ICMHook` plugs it into PPO.
"""

import torch
from torch import Tensor, nn

from worldkit.nets import mlp

__all__ = ["ICM"]


class ICM(nn.Module):
    """Curiosity for continuous actions, from batches of transitions (B, ...).

    Args:
        obs_dim: Observation size.
        action_dim: Action size (continuous actions; the inverse loss is a squared error).
        feature_dim: Size of phi(s).
        eta: Weight of the curiosity bonus.
        forward_weight: Share of the forward loss in ICM's loss (the rest is the inverse loss).
    """

    def __init__(self, obs_dim: int, action_dim: int, feature_dim: int = 32, hidden: int = 64,
                 eta: float = 0.01, forward_weight: float = 0.2):
        super().__init__()
        if eta < 0 or not 0 <= forward_weight <= 1:
            raise ValueError(f"eta must be >= 0 and forward_weight in [0, 1], got {eta}, {forward_weight}")
        self.eta, self.forward_weight = eta, forward_weight
        self.phi = mlp([obs_dim, hidden, hidden, feature_dim])
        self.inverse = mlp([2 * feature_dim, hidden, action_dim])
        self.forward_model = mlp([feature_dim + action_dim, hidden, feature_dim])

    def _forward_error(self, obs: Tensor, actions: Tensor, next_obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        phi, phi_next = self.phi(obs), self.phi(next_obs)
        predicted = self.forward_model(torch.cat([phi, actions], -1))
        return 0.5 * (predicted - phi_next.detach()).pow(2).sum(-1), phi, phi_next

    @torch.no_grad()
    def bonus(self, obs: Tensor, actions: Tensor, next_obs: Tensor) -> Tensor:
        """The curiosity of each transition, eta times the forward model's error (B,)."""
        return self.eta * self._forward_error(obs, actions, next_obs)[0]

    def loss(self, obs: Tensor, actions: Tensor, next_obs: Tensor) -> Tensor:
        """What trains ICM: the forward and inverse models' mean errors, weighted by ``forward_weight``."""
        forward_error, phi, phi_next = self._forward_error(obs, actions, next_obs)
        inverse_error = (self.inverse(torch.cat([phi, phi_next], -1)) - actions).pow(2).sum(-1)
        return self.forward_weight * forward_error.mean() + (1 - self.forward_weight) * inverse_error.mean()
