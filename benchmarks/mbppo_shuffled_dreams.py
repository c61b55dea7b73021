"""A control for MBPPO's dreams: ``recipes/mbppo_hopper.py`` with each dream's outcome taken from
another dream.

Every imagined step keeps its own start state and action but gets the predicted reward, next
state and termination of a randomly chosen other rollout, so an imagined sample still enters
PPO's update (same count, same weight, same reward scale) while telling it nothing about its
action. If MBPPO's gain survives this, it comes from the extra, noisy samples (a regulariser)
and not from what the model predicts. Takes the recipe's flags:

    python benchmarks/mbppo_shuffled_dreams.py --env=Hopper-v4 --mbppo.horizon=1 --mbppo.curiosity=none

(``python benchmarks/mbppo_returns.py --variants no_curiosity_h1_shuffled`` runs it over seeds.)
"""

import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
import mbppo_hopper  # noqa: E402

import worldkit.controllers.mbppo as mbppo  # noqa: E402
from worldkit.config import parse_config  # noqa: E402
from worldkit.controllers.imagination import imagine  # noqa: E402


def imagine_shuffled(*args, generator: torch.Generator | None = None, **kwargs):
    """Dreams whose rewards, next states and terminations are permuted across rollouts."""
    dreams = imagine(*args, generator=generator, **kwargs)
    order = torch.randperm(dreams.rewards.shape[1], generator=generator)
    return dataclasses.replace(dreams, **{key: getattr(dreams, key)[:, order]
                                          for key in ("next_obs", "rewards", "terminated", "valid")})


if __name__ == "__main__":
    mbppo.imagine = imagine_shuffled
    mbppo_hopper.main(parse_config(mbppo_hopper.Config))
