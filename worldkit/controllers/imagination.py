"""Adaptive imagination: how many dreams to run, running them, and their advantages (after the
adaptive-imagination write-up).

- :func:`rollouts_for_confidence`: the number of imagined rollouts grows linearly with the
  model's confidence, from ``min_rollouts`` at ``low_confidence`` to ``max_rollouts`` at 1.
- :func:`imagine_transitions`: all rollouts step together in the world model (worldkit's one
  imagination path), under the current policy, for a short horizon (model errors compound with
  length); a rollout stops at the step its done head predicts termination.
- :func:`per_trajectory_gae`: each rollout is its own trajectory. One that ended by predicted
  termination is worth nothing after it; one cut by the horizon bootstraps from the value of
  its own last state. A flat buffer of rollouts laid end to end (the write-up's) would bootstrap
  the last step of one from the first state of the next, which is another trajectory.
"""

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from worldkit.controllers.rollout import compute_gae
from worldkit.dream.imagine import imagine
from worldkit.models.ensemble import DynamicsEnsemble

__all__ = ["ImaginedRollouts", "imagine_transitions", "per_trajectory_gae", "rollouts_for_confidence"]


def rollouts_for_confidence(confidence: float, min_rollouts: int, max_rollouts: int,
                            low_confidence: float = 0.05) -> int:
    """The adaptive-imagination write-up's ``linear_interpolate``: confidence clamped to
    [low_confidence, 1] maps to [min_rollouts, max_rollouts], rounded to the nearest count."""
    if not 0 <= low_confidence < 1:
        raise ValueError(f"low_confidence must be in [0, 1), got {low_confidence}")
    c = min(max(confidence, low_confidence), 1.0)
    return int(round(min_rollouts + (c - low_confidence) / (1 - low_confidence) * (max_rollouts - min_rollouts)))


@dataclass
class ImaginedRollouts:
    """Rollouts dreamed in a batch, tensors (horizon, N, ...); rows after a rollout stopped are invalid.

    Attributes:
        obs: Raw observation each step was taken from.
        actions: Actions as the policy sampled them (unclipped, as the log-probs need).
        next_obs: Raw predicted observation each step led to.
        rewards: Predicted raw (unscaled) rewards.
        terminated: 1 where the done head predicted termination.
        valid: 1 for steps that happened (up to and including a predicted termination).
    """

    obs: Tensor
    actions: Tensor
    next_obs: Tensor
    rewards: Tensor
    terminated: Tensor
    valid: Tensor


@torch.no_grad()
def imagine_transitions(model: DynamicsEnsemble, policy, start_obs: Tensor, horizon: int, *,
                        generator: torch.Generator | None = None, temperature: float = 1.0,
                        shuffle: bool = False) -> ImaginedRollouts:
    """Dream ``horizon`` steps from each raw start observation (N, obs_dim) with worldkit's one
    :func:`~worldkit.dream.imagine.imagine`, ending a rollout where the done head predicts it.

    ``policy(raw_obs) -> actions`` samples the actions. With ``temperature`` > 0 each sample of
    each step follows a randomly drawn ensemble member; 0 follows the members' mean. ``shuffle``
    is a control: every step keeps its own start and action but takes the predicted outcome (next
    observation, reward, end) of another rollout, so the dreams tell PPO nothing about its actions.
    """
    start = model.observe(model.initial_state(len(start_obs)), None, start_obs)
    dream = imagine(model, start, policy, horizon, temperature=temperature, generator=generator,
                    termination="threshold", threshold=model.hparams.done_threshold, keep_features=True)
    rollouts = ImaginedRollouts(obs=dream.features[:-1], actions=dream.actions, next_obs=dream.features[1:],
                                rewards=dream.rewards, terminated=dream.terminated, valid=dream.alive)
    if shuffle:
        order = torch.randperm(len(start_obs), generator=generator)
        rollouts = dataclasses.replace(rollouts, **{key: getattr(rollouts, key)[:, order]
                                                    for key in ("next_obs", "rewards", "terminated", "valid")})
    return rollouts


def per_trajectory_gae(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor, valid: Tensor,
                       gamma: float, gae_lambda: float) -> Tensor:
    """GAE for rollouts laid out as columns (horizon, N), each its own trajectory.

    ``next_values`` holds V of each step's next state (the last valid step of a rollout cut by
    the horizon bootstraps from it); terminated steps get no bootstrap, and invalid steps (after
    a termination) add nothing. Returns advantages (horizon, N), zero on invalid steps.
    """
    live = valid.float()
    dones = torch.maximum(terminated.float(), 1.0 - live)
    advantages = compute_gae((rewards * live).float(), (values * live).float(),
                             (next_values * live * (1.0 - terminated.float())).float(), dones, gamma, gae_lambda)
    return advantages * live
