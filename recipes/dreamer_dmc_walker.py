"""Dreamer online on dm-control walker-walk: collect, train the RSSM, train the actor-critic in
imagination, repeat.

    python recipes/dreamer_dmc_walker.py                      # state observations, 100k env steps
    python recipes/dreamer_dmc_walker.py --obs=pixels         # 64x64 frames
    python recipes/dreamer_dmc_walker.py --help               # every flag

Episodes go to ``<run_dir>/replay`` (an EpisodeStore, so they survive a crash); every
``eval_every`` env steps the actor is scored in the real env and the whole training state is
saved. A killed run started again with the same flags resumes from its last saved state (the
episodes collected since then are kept). Writes metrics (JSONL/CSV), evaluations, a learning
curve, an open-loop prediction picture, and the RSSM and actor-critic as checkpoints. The loop
itself is :class:`worldkit.runs.dreamer.OnlineDreamer`.
"""

from dataclasses import dataclass

from worldkit.config import parse_config
from worldkit.runs.dreamer import (
    DreamerRunConfig,
    compile_loops,
    run_dreamer,
    train_step,
)

__all__ = ["Config", "compile_loops", "main", "train_step"]


@dataclass
class Config(DreamerRunConfig):
    """Online Dreamer (RSSM + actor-critic in imagination) on a dm-control task."""


def main(config: Config) -> dict:
    return run_dreamer(config)


if __name__ == "__main__":
    main(parse_config(Config))
