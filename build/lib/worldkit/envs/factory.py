"""One factory for gymnasium MuJoCo, MiniWorld and dm-control, single or vectorised.

Observations follow one convention across families: state observations are float32
vectors; pixel observations are uint8 arrays in HWC layout (height, width, 3), the layout
gymnasium, MiniWorld and imageio use. Models that want CHW rearrange on their side.
"""

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from worldkit.envs.backends import (
    RENDERING_FIX,
    RenderingError,
    import_miniworld,
    import_shimmy,
    looks_like_rendering_failure,
)
from worldkit.envs.spec import EnvSpec, parse_spec
from worldkit.envs.wrappers import ActionRepeat, Float32Observation, PixelObservation

__all__ = ["make_env", "make_vector_env"]

DEFAULT_PIXEL_SIZE = {"gym": (64, 64), "dmc": (64, 64), "miniworld": (60, 80)}


def make_env(
    spec: "str | EnvSpec",
    *,
    obs: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    action_repeat: int = 1,
    **kwargs: Any,
) -> gym.Env:
    """Build one environment.

    Args:
        spec: an id such as ``"Walker2d-v4"``, ``"miniworld:Sidewalk"`` or ``"dmc:walker-walk"``.
        obs: ``"state"`` or ``"pixels"`` (defaults: pixels for MiniWorld, state otherwise).
        size: (height, width) of pixel observations (and of ``render()`` for a state env made
            with ``render_mode="rgb_array"``); the family's default if None.
        seed: seeds the env's first reset and its action space.
        action_repeat: env steps each action is held for, rewards summed. It wraps the env
            below the pixel observation, so a held action renders one frame, not one per step
            (MiniWorld renders inside its own step, so there every step still renders).
        **kwargs: passed to the underlying ``gymnasium.make``.
    """
    spec = parse_spec(spec, obs)
    if action_repeat < 1:
        raise ValueError(f"action_repeat must be at least 1, got {action_repeat}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (height, width) with positive entries, got {size!r}")
    height, width = size or DEFAULT_PIXEL_SIZE[spec.family]
    try:
        with warnings.catch_warnings():  # we use the -v4 ids on purpose; gymnasium nags about v5
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            env = _BUILDERS[spec.family](spec, height, width, action_repeat, **kwargs)
        if spec.obs == "pixels":
            env.reset(seed=seed)  # renders once, so a GL problem surfaces here, named
    except RenderingError:
        raise
    except Exception as error:
        if spec.obs == "pixels" and looks_like_rendering_failure(error):
            raise RenderingError(f"{spec} could not render: {error!r}. {RENDERING_FIX}") from error
        raise
    if seed is not None:
        env.action_space.seed(seed)
        if spec.obs == "state":
            env.reset(seed=seed)
    return env


def make_vector_env(
    spec: "str | EnvSpec",
    num_envs: int,
    *,
    vectorization: str = "sync",
    obs: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> gym.vector.VectorEnv:
    """Build ``num_envs`` copies as a gymnasium vector env with episode statistics.

    Env ``i`` is seeded ``seed + i``; ``**kwargs`` (``action_repeat``, ``gymnasium.make``'s
    options) go to :func:`make_env` for every copy.

    Autoreset is SAME_STEP: on the step an episode ends, ``infos["final_obs"]`` holds its
    true last observation and the returned observation already starts the next episode.
    Finished episodes' return and length are in ``infos["episode"]`` (mask ``"_episode"``).
    ``vectorization="async"`` runs each env in its own process (spawned, so GL state is never
    inherited through fork).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    spec = parse_spec(spec, obs)
    thunks: list[Callable[[], gym.Env]] = [
        partial(make_env, spec, size=size, seed=None if seed is None else seed + i, **kwargs) for i in range(num_envs)
    ]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vectorization == "sync":
        envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=mode)
    elif vectorization == "async":
        envs = gym.vector.AsyncVectorEnv(thunks, autoreset_mode=mode, context="spawn")
    else:
        raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def _repeat(env: gym.Env, times: int) -> gym.Env:
    return env if times == 1 else ActionRepeat(env, times)


def _make_gym(spec: EnvSpec, height: int, width: int, repeat: int, **kwargs) -> gym.Env:
    if spec.obs == "pixels":
        env = gym.make(spec.gym_id, render_mode="rgb_array", width=width, height=height, **kwargs)
        return PixelObservation(_repeat(env, repeat))
    if kwargs.get("render_mode") == "rgb_array" and "width" not in kwargs:  # state env that can also show itself
        try:  # MuJoCo envs take a render size; others render at their own
            return _state_float32(_repeat(gym.make(spec.gym_id, width=width, height=height, **kwargs), repeat))
        except TypeError:
            pass
    return _state_float32(_repeat(gym.make(spec.gym_id, **kwargs), repeat))


def _make_miniworld(spec: EnvSpec, height: int, width: int, repeat: int, **kwargs) -> gym.Env:
    import_miniworld()
    return _repeat(gym.make(spec.gym_id, obs_height=height, obs_width=width, **kwargs), repeat)


def _make_dmc(spec: EnvSpec, height: int, width: int, repeat: int, camera_id: int = 0, **kwargs) -> gym.Env:
    import_shimmy()
    if spec.obs == "pixels":
        render_kwargs = {"height": height, "width": width, "camera_id": camera_id}
        env = gym.make(spec.gym_id, render_mode="rgb_array", render_kwargs=render_kwargs, **kwargs)
        return PixelObservation(_repeat(env, repeat))
    if kwargs.get("render_mode") == "rgb_array":  # state env that can also show itself
        kwargs = {"render_kwargs": {"height": height, "width": width, "camera_id": camera_id}, **kwargs}
    env = gym.wrappers.FlattenObservation(_repeat(gym.make(spec.gym_id, **kwargs), repeat))
    return _state_float32(env)


def _state_float32(env: gym.Env) -> gym.Env:
    if not isinstance(env.observation_space, gym.spaces.Box):
        return env  # discrete observations (e.g. FrozenLake) stay as they are
    if env.observation_space.dtype == np.float32:
        return env
    return Float32Observation(env)


_BUILDERS = {"gym": _make_gym, "miniworld": _make_miniworld, "dmc": _make_dmc}
