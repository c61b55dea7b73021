"""The episode file: one finished episode as a standard ``.npz``.

Arrays (T transitions):

- ``obs`` (T+1, ...): every observation, the final one included (a Dict space's: one array per
  key, stored as ``obs.<key>``);
- ``action`` (T, ...): ``action[t]`` was taken on ``obs[t]``;
- ``reward`` (T,) float32: the reward for ``action[t]``;
- ``terminated``, ``truncated`` (T,) bool: only the last entry of either may be True, and one
  of them is (only finished episodes are files).

The name carries the episode's index and length (``ep-000042-T0500.npz``), so a store is
indexed from a directory listing without opening a file. Pixel episodes are deflated at
zlib level 1: half the time of ``np.savez_compressed``'s level 6 for files about 10% larger,
which keeps compression from slowing collection. ``np.load`` reads both kinds.
"""

import io
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import gymnasium as gym
import numpy as np

KEYS = ("obs", "action", "reward", "terminated", "truncated")
Episode = dict[str, np.ndarray]

_NAME = re.compile(r"^ep-(\d{6,})-T(\d{4,})\.npz$")


class InvalidEpisodeError(ValueError):
    """An episode does not fit the format or the store's spaces."""


def episode_name(index: int, length: int) -> str:
    return f"ep-{index:06d}-T{length:04d}.npz"


def parse_episode_name(name: str) -> tuple[int, int] | None:
    """(index, length) from a file name, or None for any file that is not an episode."""
    match = _NAME.match(name)
    return (int(match[1]), int(match[2])) if match else None


def validate_episode(episode: Episode, observation_space: gym.Space, action_space: gym.Space) -> Episode:
    """Check an episode against the format and the spaces; returns it in the stored dtypes."""
    missing, extra = set(KEYS) - set(episode), set(episode) - set(KEYS)
    if missing or extra:
        raise InvalidEpisodeError(
            f"an episode has exactly the arrays {list(KEYS)}; missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    length = len(episode["action"])
    if length < 1:
        raise InvalidEpisodeError("an episode has at least one transition (len(action) >= 1)")
    if isinstance(observation_space, gym.spaces.Dict):
        obs = episode["obs"]
        if not isinstance(obs, dict) or set(obs) != set(observation_space.spaces):
            raise InvalidEpisodeError(f"obs must be a dict of the arrays {sorted(observation_space.spaces)}")
        stored_obs = {key: _array(obs, key, (length + 1, *space.shape), space.dtype)
                      for key, space in observation_space.spaces.items()}
    else:
        stored_obs = _array(episode, "obs", (length + 1, *observation_space.shape), observation_space.dtype)
    out = {
        "obs": stored_obs,
        "action": _array(episode, "action", (length, *action_space.shape), action_space.dtype),
        "reward": _array(episode, "reward", (length,), np.float32),
        "terminated": _array(episode, "terminated", (length,), np.bool_),
        "truncated": _array(episode, "truncated", (length,), np.bool_),
    }
    for key in ("terminated", "truncated"):
        if out[key][:-1].any():
            early = np.flatnonzero(out[key][:-1]).tolist()
            raise InvalidEpisodeError(f"{key} is True before the last step (at steps {early})")
    if not (out["terminated"][-1] or out["truncated"][-1]):
        raise InvalidEpisodeError("the last step is neither terminated nor truncated: the episode is unfinished")
    return out


def write_episode(file: BinaryIO, episode: Episode, *, compress: bool) -> None:
    """Write an ``.npz`` (what ``np.savez`` writes, with our choice of deflate level).

    The archive is built in memory and written in one call: zipfile seeks back to patch
    each member's header, and on a real file every seek is a system call.
    """
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method, compresslevel=1 if compress else None) as archive:
        for key, array in _members(episode):
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    file.write(buffer.getbuffer())


def read_episode(path: Path) -> Episode:
    """Load every array of an episode file (a Dict space's observations as ``obs.<key>`` members)."""
    with np.load(path, allow_pickle=False) as arrays:
        episode = {key: arrays[key] for key in KEYS if key != "obs"}
        parts = {name.removeprefix("obs."): arrays[name] for name in arrays.files if name.startswith("obs.")}
        episode["obs"] = parts if parts else arrays["obs"]
        return episode


def _members(episode: Episode) -> list[tuple[str, np.ndarray]]:
    """The file's arrays: one per key, and one per key of dict observations (``obs.<key>``)."""
    members = []
    for key in KEYS:
        value = episode[key]
        if isinstance(value, dict):
            members += [(f"{key}.{name}", array) for name, array in value.items()]
        else:
            members.append((key, value))
    return members


def _array(episode: Episode, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    value = np.asarray(episode[key])
    if value.shape != shape:
        raise InvalidEpisodeError(f"{key} has shape {value.shape}; this store expects {shape}")
    dtype = np.dtype(dtype)
    if value.dtype != dtype and not np.can_cast(value.dtype, dtype, casting="same_kind"):
        raise InvalidEpisodeError(f"{key} has dtype {value.dtype}, which does not convert to the store's {dtype}")
    return value.astype(dtype, copy=False)
