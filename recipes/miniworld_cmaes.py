"""World Models on MiniWorld (after the World Models write-up): V (a conv VAE), M (an MDN-RNN),
C (linear, CMA-ES in the dream).

    python recipes/miniworld_cmaes.py                                  # Sidewalk, default budget
    python recipes/miniworld_cmaes.py --env=miniworld:OneRoom --cmaes.temperature=1.15
    python recipes/miniworld_cmaes.py --pretrained=True --rounds=0     # dream in the shipped V and M
    python recipes/miniworld_cmaes.py --help                           # every flag

Each seed collects episodes, trains V and ``--m_candidates`` Ms, searches a controller in each M's
dream, goes on with the M whose controller does best in real episodes, runs ``--rounds`` of the
controller's own episodes, keeps the stage whose controller does best in real episodes and
evaluates it (stages and files: :mod:`worldkit.runs.world_models`). Every stage writes its result
into ``<run_dir>/<env>-seed<k>/`` and is skipped when that result exists, so a killed run started
again with the same flags resumes.
"""

from dataclasses import dataclass

from worldkit.cli import run_command
from worldkit.config import parse_config
from worldkit.runs.world_models import WorldModelsConfig, run_world_models


@dataclass
class Config(WorldModelsConfig):
    """World Models (V + M + C, CMA-ES in the dream) on a MiniWorld task."""


def main(config: Config) -> list[dict]:
    return run_world_models(config)


if __name__ == "__main__":
    run_command(lambda: main(parse_config(Config)))  # a mistake in the flags is one line, not a traceback
