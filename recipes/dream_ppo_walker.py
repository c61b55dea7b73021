"""PPO trained only in a world model's dream of MuJoCo Walker2d, improved round by round.

    python recipes/dream_ppo_walker.py                          # a dynamics ensemble dreams (ME-TRPO's design)
    python recipes/dream_ppo_walker.py --world_model=rssm       # an RSSM dreams
    python recipes/dream_ppo_walker.py --help                   # every flag

Each round: real episodes (random actions first, then the dream-trained policy's), the world
model trained on all of them, PPO trained purely in its dream from the states of the latest real
episodes, the policy validated on a few real episodes and scored on others. The policy never learns
from a real step; the round whose policy validates best gives the run's policy. The run prints its
budget split at the start, resumes after a kill from its last saved stage, and writes
``evaluations.jsonl`` (per round: validation and real return, the dream's return over ``horizon``
steps and the real one over the same steps, their gap), a learning curve against real env steps,
the chosen policy and its world model as checkpoints, and ``summary.json``. The loop is :mod:`worldkit.runs.dream_ppo`.
"""

from dataclasses import dataclass

from worldkit.cli import run_command
from worldkit.config import parse_config
from worldkit.runs.dream_ppo import DreamPPOConfig, run_dream_ppo


@dataclass
class Config(DreamPPOConfig):
    """PPO trained only in the dream of a world model that improves round by round."""


def main(config: Config) -> dict:
    return run_dream_ppo(config)


if __name__ == "__main__":
    run_command(lambda: main(parse_config(Config)))  # a mistake in the flags is one line, not a traceback
