"""A recipe's run folder: resuming after a kill, and refusing to mix two experiments in one folder.

A recipe saves its training state atomically at each evaluation, and on a restart with the same
settings loads it, forgets the log rows written after it (those updates are redone), and goes
on. Shared by every recipe, so they all resume the same way.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from worldkit.tracking import config_dict

__all__ = ["check_same_settings", "drop_rows_after", "read_jsonl", "save_atomically", "sweep_run_dir"]


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file renamed into place: a kill leaves the old state or the new."""
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


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
    saved, wanted, resumable = json.loads(saved_file.read_text()), config_dict(config), set(resumable)
    differences = sorted(key for key in set(saved) | set(wanted)
                         if key not in resumable and saved.get(key) != wanted.get(key))
    if differences:
        details = ", ".join(f"{key}: saved {saved.get(key)!r}, now {wanted.get(key)!r}" for key in differences)
        raise ValueError(f"{run_dir} holds a run with other settings ({details}); "
                         "give another --run_dir, or the saved settings to resume it")


def drop_rows_after(step: int, *files: Path) -> None:
    """Forget what was logged after the saved state: those updates are redone."""
    for path in files:
        kept = [row for row in read_jsonl(path) if row["step"] <= step]
        path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (none if it does not exist)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def sweep_run_dir(run_dir: Path) -> Path:
    """Under a W&B sweep agent, one folder per sweep run (the run id appended); else ``run_dir``."""
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return run_dir.with_name(f"{run_dir.name}-{os.environ['WANDB_RUN_ID']}")
    return run_dir
