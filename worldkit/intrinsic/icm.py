"""Intrinsic Curiosity Module (Pathak et al., 2017) as a PPO hook: the PPO+ICM baseline.

A feature encoder phi is trained by an inverse model (predict a from phi(s), phi(s')) so it keeps
what the agent controls; a forward model predicts phi(s') from (phi(s), a), and its error is the
curiosity bonus r_int = eta * ||phi(s') - f(phi(s), a)||^2 / 2. Unlike world-model-assisted PPO,
the policy keeps reading the raw (normalised) observation.
"""

import torch
from torch import Tensor, nn

from worldkit.controllers.rollout import PPOHook, Rollout
from worldkit.models.mlp import mlp


class ICM(nn.Module, PPOHook):
    """Curiosity for continuous actions; its losses join PPO's optimisation.

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

    @property
    def name(self) -> str:
        return "icm"

    def _forward_error(self, obs: Tensor, actions: Tensor, next_obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        phi, phi_next = self.phi(obs), self.phi(next_obs)
        predicted = self.forward_model(torch.cat([phi, actions], -1))
        return 0.5 * (predicted - phi_next.detach()).pow(2).sum(-1), phi, phi_next

    @torch.no_grad()
    def intrinsic_reward(self, obs: Tensor, actions: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor:
        error, _, _ = self._forward_error(obs.flatten(0, 1), actions.flatten(0, 1), next_obs.flatten(0, 1))
        return self.eta * error.view(obs.shape[:2])

    def auxiliary_loss(self, minibatch: Rollout, features: Tensor) -> Tensor:
        forward_error, phi, phi_next = self._forward_error(minibatch.obs, minibatch.actions, minibatch.next_obs)
        inverse_error = (self.inverse(torch.cat([phi, phi_next], -1)) - minibatch.actions).pow(2).sum(-1)
        return self.forward_weight * forward_error.mean() + (1 - self.forward_weight) * inverse_error.mean()
