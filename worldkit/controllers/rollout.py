"""What one PPO rollout holds, how its advantages are computed, and the hooks that extend PPO."""

from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PPOHook", "Rollout", "WeightedSamples", "compute_gae"]


class PPOHook:
    """Extension points of :class:`PPO`; subclass and override only what you need.

    Every method is optional: the defaults add nothing. All tensors are on the CPU; observations
    are normalised, as the agent sees them. A hook that is also an ``nn.Module`` has its parameters
    trained by PPO's optimizer (in the same backward pass as the PPO loss), which is how a world
    model learns from :meth:`auxiliary_loss`.

    Metrics are logged under the hook's :attr:`name` (its class name unless set).
    """

    clip_apart: bool = False
    """Clip the gradient norm of this hook's parameters on their own (at ``max_grad_norm``), not
    jointly with the policy's: a large auxiliary gradient then cannot shrink the policy's step."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def feature_module(self) -> nn.Module | None:
        """A module mapping normalised observations to the actor's and critic's input.

        Its parameters join PPO's optimizer. At most one hook may provide one. None: identity.
        """
        return None

    def intrinsic_reward(self, obs: Tensor, actions: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor | None:
        """A bonus of shape ``(num_steps, num_envs)`` added to the rewards before GAE.

        Called once per rollout, under ``torch.no_grad()``, with the whole rollout: ``obs`` and
        ``next_obs`` are ``(num_steps, num_envs, *obs_shape)``, ``next_obs`` being the true next
        observation (the final one where ``dones`` is 1). Extrinsic rewards are already scaled
        when reward normalisation is on. Its mean is logged as ``intrinsic_reward/<name>``.
        """
        return None

    def auxiliary_loss(self, minibatch: "Rollout", features: Tensor) -> Tensor | None:
        """A scalar added to the PPO loss of every minibatch, before the one backward pass.

        ``minibatch`` has the :class:`Rollout` fields flattened to ``(minibatch_size, ...)``;
        ``features`` is the feature module's output for ``minibatch.obs`` (the observations
        themselves without one), with gradients: a loss that starts from the same encoding
        reuses it instead of running the encoder again.
        Its mean over the update is logged as ``aux_loss/<name>``.
        """
        return None

    def on_rollout_end(self, rollout: "Rollout") -> None:
        """Called after advantages and returns are computed, before the update."""

    def extra_samples(self, agent: nn.Module, rollout: "Rollout", config) -> "WeightedSamples | None":
        """Transitions to train on beside the real rollout (e.g. imagined ones), each with a weight.

        Called after :meth:`on_rollout_end`, under ``torch.no_grad()``, with the learner's
        ``PPOAgent``, the finished rollout and the ``PPOConfig``. The samples must carry their
        own ``logprobs``, ``values``, ``advantages`` and ``returns`` (computed per trajectory:
        PPO cannot know where one imagined trajectory ends and the next begins). They join the
        update's shuffled minibatches; every sample's policy, value and entropy terms are
        multiplied by its weight (real samples weigh 1). :meth:`auxiliary_loss` sees only the
        real samples of a minibatch. None (the default) leaves PPO exactly as it is.
        """
        return None

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each of an update's passes over its samples (``epoch`` counts from 0)."""

    def on_update_end(self, metrics: dict[str, float]) -> None:
        """Called after each update with its metrics; a hook may add entries (e.g. its own losses)."""

    def state_dict(self) -> dict:
        """What resuming needs beyond PPO's own state (tensors and plain values). PPO's already
        holds the parameters of a hook that is an ``nn.Module`` (whose ``state_dict`` this is);
        a plain hook with a model, an optimizer or counters returns them here. Empty by default."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`. Nothing to restore by default."""


# ------------------------------------------------------------------------------------- rollout


@dataclass
class Rollout:
    """One rollout's transitions, shaped ``(num_steps, num_envs, ...)``.

    A minibatch has the same fields flattened to ``(minibatch_size, ...)``.

    Attributes:
        obs: Normalised observations the actions were taken from.
        actions: Actions as sampled, before clipping to the bounds.
        next_obs: Normalised observation each step led to; where an episode ended, its true
            final observation (not the first of the next episode).
        rewards: Rewards that GAE used: extrinsic (scaled if reward normalisation is on) plus
            any intrinsic reward.
        terminated: 1 where the episode terminated (no bootstrap), 0 elsewhere.
        dones: 1 where the episode ended for any reason, truncation included.
        logprobs: Log-probabilities of ``actions`` under the policy that collected them.
        values: Critic's values of ``obs`` when collected.
        advantages: GAE advantages.
        returns: ``advantages + values``, the critic's targets.
    """

    obs: Tensor
    actions: Tensor
    next_obs: Tensor
    rewards: Tensor
    terminated: Tensor
    dones: Tensor
    logprobs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    @classmethod
    def empty(
        cls, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], action_space: gym.Space
    ) -> "Rollout":
        """Preallocated storage, so collecting a rollout allocates nothing."""
        steps = (num_steps, num_envs)
        if isinstance(action_space, gym.spaces.Box):
            actions = torch.zeros(*steps, *action_space.shape)
        else:
            actions = torch.zeros(steps, dtype=torch.long)
        return cls(
            obs=torch.zeros(*steps, *obs_shape),
            actions=actions,
            next_obs=torch.zeros(*steps, *obs_shape),
            **{name: torch.zeros(steps) for name in
               ("rewards", "terminated", "dones", "logprobs", "values", "advantages", "returns")},
        )

    def flatten(self) -> "Rollout":
        """Steps and envs merged into one batch dimension (views, no copies)."""
        return Rollout(*(getattr(self, f.name).flatten(0, 1) for f in fields(self)))

    def __getitem__(self, index: Tensor | slice) -> "Rollout":
        return Rollout(*(getattr(self, f.name)[index] for f in fields(self)))

    def split(self, size: int) -> list["Rollout"]:
        """Consecutive chunks of ``size`` along the first dimension (views)."""
        chunks = [getattr(self, f.name).split(size) for f in fields(self)]
        return [Rollout(*parts) for parts in zip(*chunks)]


@dataclass
class WeightedSamples:
    """Extra transitions for one PPO update: a flat :class:`Rollout` ``(n, ...)`` and a weight each."""

    samples: Rollout
    weights: Tensor

    def __post_init__(self) -> None:
        n = len(self.samples.obs)
        if self.weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), one per sample, got {tuple(self.weights.shape)}")
        for f in fields(self.samples):
            if len(getattr(self.samples, f.name)) != n:
                raise ValueError(f"samples.{f.name} has {len(getattr(self.samples, f.name))} rows, obs has {n}")


def compute_gae(
    rewards: Tensor, values: Tensor, next_values: Tensor, dones: Tensor, gamma: float, gae_lambda: float
) -> Tensor:
    """Generalised advantage estimates for a ``(num_steps, num_envs)`` rollout.

    Args:
        rewards: Reward of each step.
        values: V(obs) of each step.
        next_values: V of the state each step led to: V(next obs) while the episode runs,
            V(final obs) where it was truncated, 0 where it terminated. Bootstrapping from the
            true final observation is what keeps a time limit from looking like a failure.
        dones: 1 where the episode ended (either way): advantages do not flow back across it.
        gamma: Discount.
        gae_lambda: GAE's lambda.
    """
    # numpy views: a Python loop over steps runs several times faster on them than on tensors.
    deltas = (rewards + gamma * next_values - values).numpy()
    carry = (gamma * gae_lambda * (1.0 - dones)).numpy()
    advantages = np.zeros_like(deltas)
    last = np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        last = deltas[t] + carry[t] * last
        advantages[t] = last
    return torch.from_numpy(advantages)
