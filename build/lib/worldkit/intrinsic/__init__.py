"""Intrinsic rewards: curiosity from a model's prediction error (ICM, RND, the dynamics
ensemble's own error), and beta, their weight adapted to the extrinsic return's trend."""

from worldkit.intrinsic.adaptive_beta import AdaptiveBeta
from worldkit.intrinsic.icm import ICM
from worldkit.intrinsic.model_error import ModelErrorCuriosity
from worldkit.intrinsic.rnd import RND

__all__ = ["ICM", "RND", "AdaptiveBeta", "ModelErrorCuriosity"]
