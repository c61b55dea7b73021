"""Controllers: learners that turn experience (real or dreamed) into a policy."""

from worldkit.controllers.ppo import PPO, PPOAgent, PPOConfig, PPOHook, Rollout, compute_gae, evaluate

__all__ = ["PPO", "PPOAgent", "PPOConfig", "PPOHook", "Rollout", "compute_gae", "evaluate"]
