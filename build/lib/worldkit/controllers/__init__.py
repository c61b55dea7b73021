"""Controllers: learners that turn experience (real or dreamed) into a policy."""

from worldkit.controllers.policy import PPOAgent
from worldkit.controllers.ppo import PPO, PPO_PRESETS, PPOConfig, evaluate
from worldkit.controllers.rollout import PPOHook, Rollout, compute_gae

__all__ = ["PPO", "PPO_PRESETS", "PPOAgent", "PPOConfig", "PPOHook", "Rollout", "compute_gae", "evaluate"]
