"""Environments: one factory for gymnasium MuJoCo, MiniWorld and dm-control.

Pixel observations are uint8 HWC everywhere; state observations are float32 vectors.
"""

from worldkit.envs.backends import RenderingError
from worldkit.envs.factory import make_env, make_vector_env
from worldkit.envs.spec import EnvSpec, UnknownEnvError, known_ids, parse_spec
from worldkit.envs.wrappers import (
    ActionRepeat,
    Float32Observation,
    PixelObservation,
    ResizeFrames,
    resize_frame,
)

__all__ = [
    "ActionRepeat",
    "EnvSpec",
    "Float32Observation",
    "PixelObservation",
    "RenderingError",
    "ResizeFrames",
    "UnknownEnvError",
    "known_ids",
    "make_env",
    "make_vector_env",
    "parse_spec",
    "resize_frame",
]
