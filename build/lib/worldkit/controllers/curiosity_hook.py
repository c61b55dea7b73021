"""PPO+ICM: the Intrinsic Curiosity Module as a PPO hook.

Its bonus joins the rollout's rewards and its loss joins PPO's (ICM's parameters are trained by
PPO's optimizer); the policy keeps reading the raw (normalised) observation, unlike
world-model-assisted PPO.
"""

from torch import Tensor

from worldkit.controllers.rollout import PPOHook, Rollout
from worldkit.intrinsic.icm import ICM

__all__ = ["ICMHook"]


class ICMHook(ICM, PPOHook):
    """An :class:`~worldkit.intrinsic.icm.ICM` (same arguments, same state dict) that PPO calls."""

    @property
    def name(self) -> str:
        return "icm"

    def intrinsic_reward(self, obs: Tensor, actions: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor:
        return self.bonus(obs.flatten(0, 1), actions.flatten(0, 1), next_obs.flatten(0, 1)).view(obs.shape[:2])

    def auxiliary_loss(self, minibatch: Rollout, features: Tensor) -> Tensor:
        return self.loss(minibatch.obs, minibatch.actions, minibatch.next_obs)
