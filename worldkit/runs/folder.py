"""A run's folder: one per experiment (and per sweep run), never two experiments mixed in one."""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worldkit.tracking import config_dict

__all__ = ["RunDirInUseError", "check_same_settings", "hold_run_dir", "run_dir_holder", "sweep_run_dir"]

LOCK_FILE = ".writer.lock"


class RunDirInUseError(RuntimeError):
    """Another live process is writing to this run folder."""


_held: dict[Path, Any] = {}


def hold_run_dir(run_dir: Path) -> None:
    """Make this process the run folder's one writer, for as long as it lives.

    Two processes on one folder would interleave their logs and overwrite each other's state. The
    lock is an OS file lock, so the kernel drops it when its holder exits, however it exits: a
    folder left by a killed run is taken over at once. Holding it again in the same process is a no-op.

    Raises:
        RunDirInUseError: a live process holds the folder (the message names its PID).
    """
    from worldkit.data.lock import WriterLock

    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(run_dir / LOCK_FILE)
    if not lock.try_acquire():
        holder = (run_dir / LOCK_FILE).read_text().strip() or "unknown"
        raise RunDirInUseError(f"{run_dir} is in use by another run (process {holder}): wait for it to finish, "
                               "or give another --run_dir")
    lock.record(f"{os.getpid()}\n")
    _held[run_dir] = lock


def run_dir_holder(run_dir: Path) -> "str | None":
    """The PID of the live process writing to ``run_dir``, or None when no process is."""
    from worldkit.data.lock import WriterLock

    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return str(os.getpid())
    lock = WriterLock(run_dir / LOCK_FILE)
    if lock.try_acquire():
        lock.release()
        return None
    return (run_dir / LOCK_FILE).read_text().strip() or "unknown"


def check_same_settings(run_dir: Path, config: Any, resumable: Iterable[str]) -> None:
    """Refuse to resume a run folder that holds a run with other settings (it would mix them).

    Args:
        run_dir: The run folder (holding ``state.pt`` and ``config.json`` once a run saved).
        config: The recipe's config dataclass.
        resumable: Top-level fields that may change when a run is continued (e.g. total_steps).
    """
    saved_file = Path(run_dir) / "config.json"
    if not (Path(run_dir) / "state.pt").exists() or not saved_file.exists():
        return
    wanted, resumable = _flat(config_dict(config)), set(resumable)
    saved = _flat(_with_missing(json.loads(saved_file.read_text()), config_dict(type(config)())))
    differences = sorted(key for key in set(saved) | set(wanted)
                         if key.split(".")[0] not in resumable and saved.get(key) != wanted.get(key))
    if differences:
        details = ", ".join(f"{key}: saved {saved.get(key)!r}, now {wanted.get(key)!r}" for key in differences)
        raise ValueError(f"{run_dir} holds a run with other settings ({details}); "
                         "give another --run_dir, or the saved settings to resume it")


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys (``ppo.gamma``), as the flags name them."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _with_missing(saved: dict, defaults: dict) -> dict:
    """``saved`` with the settings added since it was written filled in at their defaults (what
    the run used, as they did not exist yet)."""
    filled = {**defaults, **saved}
    for key, value in saved.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            filled[key] = _with_missing(value, defaults[key])
    return filled


def sweep_run_dir(run_dir: Path) -> Path:
    """Under a W&B sweep agent, one folder per sweep run (the run id appended); else ``run_dir``."""
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return run_dir.with_name(f"{run_dir.name}-{os.environ['WANDB_RUN_ID']}")
    return run_dir
