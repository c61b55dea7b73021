"""A recipe's run folder and run loops: resuming after a kill, refusing to mix two experiments in
one folder, and the loops recipes compose (:mod:`worldkit.runs.ppo`, :mod:`worldkit.runs.dreamer`).

A run saves its training state atomically at each evaluation, and on a restart with the same
settings loads it, forgets the log rows written after it (those updates are redone), and goes on.
"""

from worldkit.runs.files import drop_rows_after, read_jsonl, save_atomically
from worldkit.runs.folder import check_same_settings, sweep_run_dir
from worldkit.runs.ppo import open_ppo_run, train_ppo_in_run
from worldkit.runs.schedules import Every, Ratio

__all__ = ["Every", "Ratio", "check_same_settings", "drop_rows_after", "open_ppo_run", "read_jsonl", "save_atomically",
           "sweep_run_dir", "train_ppo_in_run"]
