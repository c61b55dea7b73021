"""EpisodeStore: a directory of episode files plus ``store.json``, append-only and crash-safe.

``store.json`` names what the episodes are of (env spec, spaces) and how they were made
(each collection's policy and seed, worldkit version, creation date), so a store can be
checked against an env before a single step is collected, and trained on without guessing.
"""

import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np

from worldkit.data.episode import (
    Episode,
    episode_name,
    parse_episode_name,
    read_episode,
    validate_episode,
    write_episode,
)
from worldkit.data.files import remove_temp_files
from worldkit.data.lock import StoreLockedError, WriterLock
from worldkit.envs import parse_spec
from worldkit.files import atomic_write, temp_path, write_temp
from worldkit.spaces import space_from_dict, space_to_dict

FORMAT = "worldkit-episodes"
FORMAT_VERSION = 1
METADATA = "store.json"
LOCK = ".lock"


class StoreMismatchError(ValueError):
    """A store holds episodes of another env or other spaces than asked for."""


class EpisodeStore:
    """Episodes of one env on disk, one ``.npz`` per finished episode.

    ``EpisodeStore(path)`` opens an existing store; :meth:`create` makes one (or opens a
    matching one). Appending takes an OS lock on the store, so one process writes at a
    time while any number read. Readers see the episodes present when they opened.

    Args:
        path: the store's directory (holding ``store.json``).
    """

    def __init__(self, path: "str | os.PathLike"):
        self.path = Path(path)
        metadata_path = self.path / METADATA
        if not metadata_path.exists():
            raise FileNotFoundError(
                f"no episode store at {self.path} (no {METADATA}); make one with EpisodeStore.create "
                "or worldkit.data.collect"
            )
        self.metadata = json.loads(metadata_path.read_text())
        if self.metadata.get("format") != FORMAT or self.metadata.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{metadata_path} is not a worldkit episode store of format version <= {FORMAT_VERSION} "
                f"(found {self.metadata.get('format')!r} version {self.metadata.get('format_version')!r})"
            )
        self.observation_space = space_from_dict(self.metadata["observation_space"])
        self.action_space = space_from_dict(self.metadata["action_space"])
        self._lock = WriterLock(self.path / LOCK)
        try:
            if self._lock.try_acquire():  # no writer alive: what temp files exist are a dead one's
                try:
                    remove_temp_files(self.path)
                finally:
                    self._lock.release()
        except OSError:  # a read-only store: nothing can be cleaned, and temp files are never listed
            pass
        self._scan()

    @classmethod
    def create(
        cls,
        path: "str | os.PathLike",
        env_spec: str,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        env_size: tuple[int, int] | None = None,
    ) -> "EpisodeStore":
        """Make a new store, or open the one at ``path`` if it is of the same env and spaces.

        Args:
            path: directory to hold the store (created if missing).
            env_spec: any id :func:`worldkit.envs.parse_spec` accepts; stored in canonical form.
            observation_space: the space of one env's observations.
            action_space: the space of one env's actions.
            env_size: the pixel ``size`` the env was made with, if not its default, so that
                a resumed collection makes the same env.

        Raises:
            StoreMismatchError: a store exists at ``path`` with another env spec or spaces.
        """
        path = Path(path)
        spec = str(parse_spec(env_spec))
        if (path / METADATA).exists():
            store = cls(path)
            store.check_matches(spec, observation_space, action_space)
            return store
        path.mkdir(parents=True, exist_ok=True)
        from worldkit import __version__

        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "env_spec": spec,
            "env_size": list(env_size) if env_size else None,
            "observation_space": space_to_dict(observation_space),
            "action_space": space_to_dict(action_space),
            "worldkit_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "collections": [],
        }
        atomic_write(path / METADATA, lambda file: file.write(_json_bytes(metadata)))
        return cls(path)

    @property
    def env_spec(self) -> str:
        """The canonical id (``str(parse_spec(...))``) of the env the episodes come from."""
        return self.metadata["env_spec"]

    @property
    def env_size(self) -> tuple[int, int] | None:
        """The pixel size the env was made with, or None for the family's default."""
        size = self.metadata.get("env_size")
        return tuple(size) if size else None

    def check_matches(
        self, env_spec: str, observation_space: gym.Space | None = None, action_space: gym.Space | None = None
    ) -> None:
        """Raise :class:`StoreMismatchError` unless the store is of this env (and these spaces)."""
        spec = str(parse_spec(env_spec))
        problems = []
        if spec != self.env_spec:
            problems.append(f"env spec: the store holds {self.env_spec!r}, asked for {spec!r}")
        for name, asked in (("observation", observation_space), ("action", action_space)):
            stored = self.metadata[f"{name}_space"]
            if asked is not None and space_to_dict(asked) != stored:
                problems.append(
                    f"{name} space: the store holds {_describe(stored)}, asked for {_describe(space_to_dict(asked))}"
                )
        if problems:
            raise StoreMismatchError(
                f"the episode store at {self.path} does not match: " + "; ".join(problems)
                + ". Use another directory, or the store's own env."
            )

    def __len__(self) -> int:
        """Number of episodes."""
        return len(self._names)

    @property
    def num_steps(self) -> int:
        """Number of transitions (the sum of the episodes' lengths)."""
        return self._num_steps

    @property
    def lengths(self) -> np.ndarray:
        """Each episode's number of transitions, in episode order (int64)."""
        return np.array(self._lengths, dtype=np.int64)

    @property
    def episode_paths(self) -> list[Path]:
        """Each episode's file, in episode order."""
        return [self.path / name for name in self._names]

    def episode(self, i: int) -> Episode:
        """Load episode ``i`` (negative counts from the end) as a dict of numpy arrays."""
        return read_episode(self.path / self._names[i])

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)

    def add(self, episode: Episode) -> Path:
        """Validate a finished episode and append it as a new file; returns the file.

        The first call takes the store's writer lock (held until :meth:`close`).

        Raises:
            InvalidEpisodeError: the episode does not fit the format or the store's spaces.
            StoreLockedError: another process is writing to this store.
        """
        self.lock()
        return self._publish(self._prepare(episode, self._next_index))

    def _prepare(self, episode: Episode, index: int) -> Path:
        """Validate and durably write episode ``index`` under its temporary name; returns its
        final path. Safe to call from several threads at once (``BackgroundWriter`` does)."""
        episode = validate_episode(episode, self.observation_space, self.action_space)
        path = self.path / episode_name(index, len(episode["action"]))
        space = self.observation_space
        parts = space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]
        compress = any(part.dtype == np.uint8 for part in parts)  # frames deflate well
        write_temp(path, lambda file: write_episode(file, episode, compress=compress))
        return path

    def _publish(self, path: Path) -> Path:
        """Rename a prepared episode into place: the atomic step, taken in index order."""
        index, length = parse_episode_name(path.name)
        if index != self._next_index:
            raise RuntimeError(f"episode {index} published out of order (next is {self._next_index})")
        os.replace(temp_path(path), path)
        self._names.append(path.name)
        self._lengths.append(length)
        self._num_steps += length
        self._next_index += 1
        return path

    def record_collection(self, **details) -> None:
        """Append an entry (policy, seed, ...) to ``store.json``'s list of collections."""
        self.lock()
        entry = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "episodes_before": len(self), **details}
        self.metadata["collections"].append(entry)
        atomic_write(self.path / METADATA, lambda file: file.write(_json_bytes(self.metadata)))

    def lock(self) -> None:
        """Take the writer lock (``add`` does this itself); re-reads the directory once held.

        Raises:
            StoreLockedError: another process holds it.
        """
        if self._lock.held:
            return
        if not self._lock.try_acquire():
            raise StoreLockedError(f"another process is writing to the episode store at {self.path}")
        remove_temp_files(self.path)
        self._scan()  # another writer may have appended since we opened
        self.metadata = json.loads((self.path / METADATA).read_text())

    def close(self) -> None:
        """Release the writer lock, if held. The store stays readable."""
        self._lock.release()

    def __enter__(self) -> "EpisodeStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, env={self.env_spec!r}, episodes={len(self)}, steps={self.num_steps})"

    def _scan(self) -> None:
        found = sorted(
            (parsed, entry.name)
            for entry in os.scandir(self.path)
            if (parsed := parse_episode_name(entry.name)) is not None
        )
        indices = [index for (index, _), _ in found]
        if len(set(indices)) != len(indices):
            duplicated = sorted({i for i in indices if indices.count(i) > 1})
            raise ValueError(f"episode store {self.path} has several files for episode(s) {duplicated}")
        self._names = [name for _, name in found]
        self._lengths = [length for (_, length), _ in found]
        self._num_steps = sum(self._lengths)
        self._next_index = indices[-1] + 1 if indices else 0


def _describe(space: dict) -> str:
    if space["type"] == "Discrete":
        return f"Discrete(n={space['n']}, start={space['start']})"
    low, high = (space[k] if not isinstance(space[k], list) else "per-dimension" for k in ("low", "high"))
    return f"Box(shape={tuple(space['shape'])}, dtype={space['dtype']}, low={low}, high={high})"


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()
