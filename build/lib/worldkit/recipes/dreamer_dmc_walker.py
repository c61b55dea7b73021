"""Dreamer on dm-control walker-walk: ``recipes/dreamer.py`` with this task and run folder.

    python recipes/dreamer_dmc_walker.py                      # state observations, 100k env steps
    python recipes/dreamer_dmc_walker.py --obs=pixels         # 64x64 frames
    python recipes/dreamer_dmc_walker.py --help               # every flag

See ``recipes/dreamer.py`` for the presets, the files a run writes and how it resumes.
"""

from dataclasses import dataclass

from worldkit.cli import run_command
from worldkit.runs.dreamer import (
    DreamerRunConfig,
    compile_loops,
    parse_dreamer_config,
    run_dreamer,
    train_step,
)

__all__ = ["Config", "compile_loops", "main", "train_step"]


@dataclass
class Config(DreamerRunConfig):
    """Online Dreamer (RSSM + actor-critic in imagination) on dm-control walker-walk."""

    env: str = "dmc:walker-walk"
    run_dir: str = "runs/dreamer_dmc_walker"


def main(config: Config) -> dict:
    return run_dreamer(config)


if __name__ == "__main__":
    run_command(lambda: main(parse_dreamer_config(Config)))  # a mistake in the flags is one line, not a traceback
