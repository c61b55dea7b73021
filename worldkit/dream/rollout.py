"""Batched imagination: the one dream path every controller uses.

Starting from states filtered from real first frames, a policy acts on the world model's
features for ``horizon`` steps, all rollouts in one batch. Termination is not sampled: each
step's reward is weighted by the probability that the episode is still running (the product of
the continue probabilities before it), which gives the expected return with less variance than
sampled ends. A gymnasium ``DreamEnv`` steps the same :meth:`WorldModel.imagine` and samples
its ends from the same continue probability.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from worldkit.models.protocol import State, WorldModel

Policy = Callable[[torch.Tensor], torch.Tensor]
"""features (B, F) -> integer actions (B,)"""


@dataclass
class DreamRollout:
    """What a batch of dreams did: tensors (horizon, B)."""

    actions: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    """probability the episode goes on after each step"""
    alive: torch.Tensor
    """probability the episode is still running when each step is taken"""
    states: list[State] | None
    """the horizon + 1 states, when kept"""

    def returns(self, discount: float = 1.0, step_penalty: float = 0.0) -> torch.Tensor:
        """Expected return per rollout (B,): sum_t discount^t * alive_t * (r_t - step_penalty).

        ``step_penalty`` > 0 with ``discount`` < 1 is the seed's shaping, which rewards reaching a
        goal in fewer steps. A penalty also makes ending the episode early (walking into
        Sidewalk's street) look good, which the discount bounds at step_penalty / (1 - discount).
        """
        powers = discount ** torch.arange(len(self.rewards), device=self.rewards.device, dtype=self.rewards.dtype)
        return (powers[:, None] * self.alive * (self.rewards - step_penalty)).sum(0)

    def expected_length(self) -> torch.Tensor:
        """Expected number of steps before the episode ends or the horizon is reached (B,)."""
        return self.alive.sum(0)


def imagine_rollout(world_model: WorldModel, start: State, policy: Policy, horizon: int, *,
                    temperature: float = 1.0, generator: torch.Generator | None = None,
                    keep_states: bool = False) -> DreamRollout:
    """Dream ``horizon`` steps from a batch of start states under ``policy``.

    Args:
        world_model: any :class:`WorldModel`.
        start: a batch of states, e.g. ``world_model.observe(world_model.initial_state(n), None, frames)``.
        policy: features (B, F) -> actions (B,).
        horizon: steps to imagine.
        temperature: the world model's sampling temperature.
        generator: seeds the world model's sampling.
        keep_states: keep every state (for pictures; memory grows with the horizon).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    state, states = start, [start] if keep_states else None
    actions, rewards, continues = [], [], []
    for _ in range(horizon):
        action = policy(world_model.features(state))
        state, reward, continue_prob = world_model.imagine(state, action, temperature=temperature,
                                                           generator=generator)
        actions.append(action)
        rewards.append(reward)
        continues.append(continue_prob)
        if keep_states:
            states.append(state)
    continues_t = torch.stack(continues)
    alive = torch.cat([torch.ones_like(continues_t[:1]), continues_t[:-1].cumprod(0)])
    return DreamRollout(torch.stack(actions), torch.stack(rewards), continues_t, alive, states)
