"""The termination rules of gymnasium's MuJoCo tasks, read from an observation.

Why: a dream learnt from a policy's own episodes has a continue head that has seen few ends, and
it guesses ends in states it never saw. In the locomotion tasks those unseen states are the faster
gaits a better policy reaches, so a learned head that ends dreams there teaches the policy that
going faster is death. These tasks end by a fixed rule on the body's pose (Walker2d: the torso's
height and angle), which the observation carries; MBPO and MOPO end their model rollouts by it.
The rules read the env's own settings (a user's ``healthy_z_range=...`` is honoured).
"""

from collections.abc import Callable

import gymnasium as gym
import torch
from torch import Tensor

TerminationRule = Callable[[Tensor], Tensor]
"""Observations (B, obs_dim) -> ended (B,) bool."""

NEVER_ENDING = ("HalfCheetahEnv", "SwimmerEnv", "ReacherEnv")


def termination_rule(env: gym.Env) -> TerminationRule | None:
    """The rule that ends ``env``'s episodes, as a function of the observation after a step; None
    where worldkit knows none (then a world model's continue head has to learn the ends)."""
    task = env.unwrapped
    name = type(task).__name__
    if name in NEVER_ENDING:
        return _never
    if name == "InvertedPendulumEnv":
        return lambda obs: ~torch.isfinite(obs).all(-1) | (obs[:, 1].abs() > 0.2)
    if not getattr(task, "_exclude_current_positions_from_observation", False):
        return None  # the pose sits elsewhere in the observation
    if not getattr(task, "_terminate_when_unhealthy", True):
        return _never
    if name in ("Walker2dEnv", "HopperEnv"):  # observation: z, torso angle, other joints, velocities
        (min_z, max_z), (min_angle, max_angle) = task._healthy_z_range, task._healthy_angle_range
        state_range = getattr(task, "_healthy_state_range", (-float("inf"), float("inf")))

        def walker(obs: Tensor) -> Tensor:
            z, angle = obs[:, 0], obs[:, 1]
            healthy = (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)
            if name == "HopperEnv":
                healthy &= ((state_range[0] < obs[:, 1:]) & (obs[:, 1:] < state_range[1])).all(-1)
            return ~healthy

        return walker
    if name in ("AntEnv", "HumanoidEnv"):  # observation: z first
        min_z, max_z = task._healthy_z_range
        if name == "AntEnv":
            return lambda obs: ~(torch.isfinite(obs).all(-1) & (min_z <= obs[:, 0]) & (obs[:, 0] <= max_z))
        return lambda obs: ~((min_z < obs[:, 0]) & (obs[:, 0] < max_z))
    return None


def _never(obs: Tensor) -> Tensor:
    return torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device)
