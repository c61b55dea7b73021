"""collect(): run a policy in a vector env and append finished episodes to a store.

Resuming is the same call again: the store's contents count towards the asked total, and
the env and action seeds are derived from (seed, episodes already stored), so a resumed
collection continues with new episodes rather than replaying the first ones. An episode
still running when the total is reached (or when the process dies) is not stored.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from worldkit.data.batch_of_one import BatchOfOne
from worldkit.data.driver import drive
from worldkit.data.policy import resolve_policy
from worldkit.data.store import METADATA, EpisodeStore
from worldkit.data.writer import BackgroundWriter
from worldkit.envs import make_env, make_vector_env, parse_spec


def collect(
    store: "EpisodeStore | str | os.PathLike",
    env_spec: str,
    *,
    steps: int | None = None,
    episodes: int | None = None,
    policy: Any = None,
    num_envs: int = 1,
    vectorization: str = "sync",
    seed: int = 0,
    obs: str | None = None,
    size: tuple[int, int] | None = None,
    progress: bool = True,
) -> EpisodeStore:
    """Collect until the store holds ``steps`` transitions or ``episodes`` episodes in all.

    Args:
        store: an :class:`EpisodeStore` or a directory (a new store is made there if none is).
        env_spec: the env id, e.g. ``"Walker2d-v4"``, ``"miniworld:Sidewalk"``, ``"dmc:walker-walk"``.
        steps: total transitions the store should hold (it may end above: episodes are whole).
        episodes: total episodes the store should hold (exactly). Give one of the two.
        policy: None for random actions, a callable ``policy(obs_batch) -> action_batch``, or an
            object with ``act(obs_batch)``. Batches have ``num_envs`` first. A policy with memory
            (a controller reading a world model's state) may also have ``episodes_ended(done)``,
            called after every step with the boolean mask of envs whose episode just ended.
        num_envs: envs stepped together.
        vectorization: ``"sync"`` (one process) or ``"async"`` (one process per env).
        seed: base seed; with the number of stored episodes it seeds the envs and random actions.
        obs: ``"state"`` or ``"pixels"``, if not given in ``env_spec``.
        size: (height, width) of pixel observations; a resumed store reuses its own.
        progress: show a progress bar.

    Returns:
        The store, holding at least the asked total.

    Raises:
        StoreMismatchError: the store holds another env's episodes (raised before any step).
        StoreLockedError: another process is collecting into the same store.

    The store's writer lock is released on return.
    """
    if (steps is None) == (episodes is None):
        raise ValueError("give exactly one of steps= or episodes=")
    target, unit = (steps, "step") if steps is not None else (episodes, "episode")
    spec = parse_spec(env_spec, obs)
    store = _existing_store(store, str(spec))
    envs = None
    try:
        if isinstance(store, EpisodeStore):
            size = size or store.env_size
            if _held(store, unit) >= target:
                return store
            store.lock()  # another collection into this store fails here, before an env is made
        if num_envs == 1 and vectorization == "sync":
            envs = BatchOfOne(make_env(spec, size=size))
        else:
            envs = make_vector_env(spec, num_envs, vectorization=vectorization, size=size)
        spaces = envs.single_observation_space, envs.single_action_space
        if isinstance(store, EpisodeStore):
            store.check_matches(str(spec), *spaces)
        else:
            store = EpisodeStore.create(store, str(spec), *spaces, env_size=size)
        store.lock()
        _run(store, envs, policy, target, unit, seed, progress, {"num_envs": num_envs, "vectorization": vectorization})
    finally:
        if isinstance(store, EpisodeStore):
            store.close()
        if envs is not None:
            envs.close()
    return store


def _run(store, envs, policy, target, unit, seed, progress, setup) -> None:
    held = _held(store, unit)
    if held >= target:
        return
    env_seed, action_seed = (int(s) for s in np.random.SeedSequence([seed, len(store)]).generate_state(2))
    _, description = resolve_policy(policy, envs.action_space)
    store.record_collection(policy=description, seed=seed, target={f"{unit}s": target}, **setup)
    writer = BackgroundWriter(store)
    try:
        drive(envs, policy, **{f"{unit}s": target - held}, seed=env_seed, action_seed=action_seed,
              on_episode=writer.add, progress=progress and f"collect {store.env_spec}")
    finally:
        writer.close()


def _existing_store(store: "EpisodeStore | str | os.PathLike", spec: str) -> "EpisodeStore | Path":
    """The store if one exists (checked against ``spec``), else the path to make it at."""
    if not isinstance(store, EpisodeStore):
        if not (Path(store) / METADATA).exists():
            return Path(store)
        store = EpisodeStore(store)
    store.check_matches(spec)
    return store


def _held(store: EpisodeStore, unit: str) -> int:
    return store.num_steps if unit == "step" else len(store)
