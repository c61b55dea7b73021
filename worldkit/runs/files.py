"""What a run writes into its folder: its training state and its evaluations, so that a killed run
resumes from the last saved state and forgets what was logged after it (those updates are redone)."""

import json
from pathlib import Path
from typing import Any

import torch

from worldkit.files import atomic_write, atomic_write_text, read_jsonl

__all__ = ["EvaluationLog", "drop_rows_after", "read_jsonl", "save_atomically", "write_json"]


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` that a kill cannot tear: the old state or the new one, whole."""
    atomic_write(Path(path), lambda file: torch.save(state, file))


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON, written atomically."""
    atomic_write_text(Path(path), json.dumps(value, indent=2))


def drop_rows_after(step: int, *files: Path) -> None:
    """Forget what was logged after the saved state: those updates are redone."""
    for path in files:
        kept = [row for row in read_jsonl(path) if row["step"] <= step]
        atomic_write_text(Path(path), "".join(json.dumps(row) + "\n" for row in kept))


class EvaluationLog:
    """A run's ``evaluations.jsonl``, one row per evaluation, and its rows in memory.

    Args:
        path: The file.
        saved_step: The step of the state the run resumes from; rows after it are dropped. None for
            a fresh run: rows a killed run wrote before its first save are dropped too (their
            updates are redone).
    """

    def __init__(self, path: Path, saved_step: int | None = None):
        self.path = Path(path)
        if saved_step is not None or self.path.exists():
            drop_rows_after(-1 if saved_step is None else saved_step, self.path)
        self.rows = read_jsonl(self.path)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
