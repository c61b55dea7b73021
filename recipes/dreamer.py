"""Dreamer on any environment: collect, train the RSSM, train the actor-critic in imagination, repeat.

    python recipes/dreamer.py --env=dmc:walker-walk                 # state, the preset that suits this machine
    python recipes/dreamer.py --env=dmc:walker-walk --obs=pixels    # 64x64 frames
    python recipes/dreamer.py --env=gym:Walker2d-v4 --envs=4        # any gymnasium id, 4 envs collecting
    python recipes/dreamer.py --env=miniworld:Sidewalk              # pixels, Discrete actions
    python recipes/dreamer.py --env=MyEnv-v0 --env_module=mypkg.envs   # your own registered env
    python recipes/dreamer.py --preset=tiny --total_steps=1200 --prefill=500   # a smoke run, about a minute
    python recipes/dreamer.py --env=miniworld:Sidewalk --hours=0.75  # ends after 45 minutes of wall-clock
    python recipes/dreamer.py --help                                # every flag

Presets: ``cpu`` (a tiny RSSM at replay ratio 256 with compiled loops, the actor-critic imagining
from 256 of each batch's posterior states, bfloat16 where the CPU has it), ``dreamerv3`` (DreamerV3's size S, for a GPU) and ``tiny`` (smoke runs); the default picks
dreamerv3 where a GPU is found and cpu elsewhere, and the run prints its budget and an estimate
of its update time before it starts. Episodes go to ``<run_dir>/replay`` (they survive a crash);
every ``eval_every`` env steps the actor is scored in the real env and the whole training state is
saved, so the same command resumes a killed run. At the end: ``checkpoints/agent`` (world model
and actor together; ``worldkit.checkpoints.from_pretrained`` loads it and ``.evaluate()`` plays),
``evaluation.mp4``, a learning curve and an open-loop prediction picture.
"""

from dataclasses import dataclass

from worldkit.cli import run_command
from worldkit.runs.dreamer import DreamerRunConfig, parse_dreamer_config, run_dreamer


@dataclass
class Config(DreamerRunConfig):
    """Online Dreamer (RSSM + actor-critic in imagination) on any worldkit env."""


def main(config: Config) -> dict:
    return run_dreamer(config)


if __name__ == "__main__":
    run_command(lambda: main(parse_dreamer_config(Config)))  # a mistake in the flags is one line, not a traceback
