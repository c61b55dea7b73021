"""Imagination: the one dream path every controller uses (CMA-ES, DreamEnv's learners, the Dreamer
actor-critic, MBPPO).

From a batch of start states (filtered from real observations), a policy acts on the world model's
features for ``horizon`` steps, all rollouts in one batch. How a dream ends is a choice:

- ``termination="expected"`` (the default) samples no ends: each step's reward is weighted by the
  probability that the episode is still running (the product of the continue probabilities before
  it), which gives the expected return with less variance than sampled ends;
- ``termination="threshold"`` ends a rollout at the step whose probability of ending exceeds
  ``threshold`` (MBPPO's hard ends); later steps are not alive.

The continue probabilities carry no gradient (DreamerV3 uses the continue head's mode). With
``differentiable=True`` gradients flow back through the world model's steps (Dreamer's continuous
actor); otherwise each step is taken without a graph, while the policy runs in the caller's grad mode
(so a REINFORCE actor still gets its log-probabilities' gradients).
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from worldkit.models.protocol import State, WorldModel

Policy = Callable[[torch.Tensor], "torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]"]
"""features (B, F) -> actions, or (actions, extras): extras (log-probabilities, entropies) are stacked
over the horizon into :attr:`Dream.extras`"""


@dataclass
class Dream:
    """What a batch of dreams did: tensors (horizon, B, ...)."""

    actions: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    """probability the episode goes on after each step (0 or 1 with ``termination="threshold"``)"""
    alive: torch.Tensor
    """probability the episode is still running when each step is taken"""
    features: torch.Tensor | None = None
    """(horizon + 1, B, F): the features of every state, the start's included, when kept"""
    states: list[State] | None = None
    """the horizon + 1 states, when kept"""
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    """what the policy returned beside its actions, stacked"""

    @property
    def terminated(self) -> torch.Tensor:
        """Probability that each step ends the episode (1 where a hard end happened)."""
        return (1.0 - self.continues) * self.alive

    def returns(self, discount: float = 1.0, step_penalty: float = 0.0) -> torch.Tensor:
        """Expected return per rollout (B,): sum_t discount^t * alive_t * (r_t - step_penalty).

        ``step_penalty`` > 0 with ``discount`` < 1 rewards reaching a goal in fewer steps. A penalty
        also makes ending the episode early (walking into Sidewalk's street) look good, which the
        discount bounds at step_penalty / (1 - discount).
        """
        powers = discount ** torch.arange(len(self.rewards), device=self.rewards.device, dtype=self.rewards.dtype)
        return (powers[:, None] * self.alive * (self.rewards - step_penalty)).sum(0)

    def expected_length(self) -> torch.Tensor:
        """Expected number of steps before the episode ends or the horizon is reached (B,)."""
        return self.alive.sum(0)


def imagine(world_model: WorldModel, start: State, policy: Policy, horizon: int, *, temperature: float = 1.0,
            generator: torch.Generator | None = None, termination: Literal["expected", "threshold"] = "expected",
            threshold: float = 0.5, differentiable: bool = False, keep_features: bool = False,
            keep_states: bool = False) -> Dream:
    """Dream ``horizon`` steps from a batch of start states under ``policy``.

    Args:
        world_model: any :class:`~worldkit.models.protocol.WorldModel`.
        start: a batch of states, e.g. ``world_model.observe(world_model.initial_state(n), None, obs)``.
        policy: features (B, F) -> actions (B,) or (B, A), optionally with extras (see :data:`Policy`).
        horizon: steps to imagine.
        temperature: the world model's sampling temperature.
        generator: seeds the world model's sampling.
        termination: ``"expected"`` (weight steps by the probability of still running) or
            ``"threshold"`` (a hard end where the probability of ending exceeds ``threshold``).
        threshold: see ``termination``.
        differentiable: let gradients flow through the world model's steps.
        keep_features: keep every state's features (under autocast, in its dtype).
        keep_states: keep every state (for pictures; memory grows with the horizon).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if termination not in ("expected", "threshold"):
        raise ValueError(f"termination must be 'expected' or 'threshold', got {termination!r}")
    step_grad = contextlib.nullcontext() if differentiable else torch.no_grad()
    state, states = start, [start] if keep_states else None
    actions, rewards, continues, features, extras = [], [], [], [], {}
    for _ in range(horizon):
        feature = _in_autocast_dtype(world_model.features(state))
        out = policy(feature)
        action, extra = out if isinstance(out, tuple) else (out, {})
        with step_grad:
            state, reward, continue_prob = world_model.imagine(state, action, temperature=temperature,
                                                               generator=generator)
        continue_prob = continue_prob.detach()
        if termination == "threshold":
            continue_prob = (1.0 - continue_prob <= threshold).to(continue_prob.dtype)
        actions.append(action)
        rewards.append(reward)
        continues.append(continue_prob)
        for key, value in extra.items():
            extras.setdefault(key, []).append(value)
        if keep_features:
            features.append(feature)
        if keep_states:
            states.append(state)
    if keep_features:
        features.append(_in_autocast_dtype(world_model.features(state)))
    continues_t = torch.stack(continues)
    alive = torch.cat([torch.ones_like(continues_t[:1]), continues_t[:-1].cumprod(0)])
    return Dream(torch.stack(actions), torch.stack(rewards), continues_t, alive,
                 torch.stack(features) if keep_features else None, states,
                 {key: torch.stack(values) for key, values in extras.items()})


def _in_autocast_dtype(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the autocast dtype when autocast is on: cast once here, not by every layer that reads it."""
    device = x.device.type
    return x.to(torch.get_autocast_dtype(device)) if torch.is_autocast_enabled(device) else x
