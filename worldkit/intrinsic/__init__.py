"""Intrinsic rewards, each a PPOHook: curiosity from a model's prediction error."""

from worldkit.intrinsic.icm import ICM

__all__ = ["ICM"]
