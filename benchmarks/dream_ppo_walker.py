"""PPO trained only in dreams (recipes/dream_ppo_walker.py at its defaults) on Walker2d-v4, over seeds.

    python benchmarks/dream_ppo_walker.py                      # run what is missing, then report
    python benchmarks/dream_ppo_walker.py --report_only=True   # report from the runs on disk
    python benchmarks/dream_ppo_walker.py --learned_ends=True  # dreams ended by the learned continue head
    python benchmarks/dream_ppo_walker.py --gamma=0.99         # PPO's discount in the dream
    python benchmarks/dream_ppo_walker.py --dream_steps=600000 # PPO's dreamed steps a round
    python benchmarks/dream_ppo_walker.py --model_updates=2000 --first_steps=15000  # fewer world-model updates
    python benchmarks/dream_ppo_walker.py --validation_episodes=0 --first_steps=20000  # the last round's policy

Each seed is one recipe run in ``<run_dir>/seed<k>``, one after another (``--jobs=2``: two at once); finished runs are skipped
and killed ones resume. Protocol: the run's policy (the round's with the best validation return),
deterministic, 10 real episodes (reset seeds 10,000 + seed, never used for validation), after the
recipe's at most 300k real steps; IQM and mean with 95% stratified bootstrap CIs over seeds. Writes
benchmarks/results/dream_ppo_walker.json.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, provenance, run_recipe, seed_by_seed, write_results

from worldkit.config import parse_config


@dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    world_model: str = "ensemble"
    learned_ends: bool = False
    """the recipe's --learned_ends (runs in <run_dir>_learned_ends, results in dream_ppo_walker_learned_ends.json)"""
    gamma: float | None = None
    """PPO's discount in the dream, the recipe's --ppo.gamma (None: the recipe's default; else runs in
    <run_dir>[_learned_ends]_gamma<gamma>, results in dream_ppo_walker[_learned_ends]_gamma<gamma>.json)"""
    dream_steps: int | None = None
    """PPO's dreamed steps a round, the recipe's --dream_steps (None: the recipe's default; else runs
    in <run_dir>..._dream_steps<n>, results in dream_ppo_walker..._dream_steps<n>.json)"""
    model_updates: int | None = None
    """the recipe's --model_updates, world-model updates a round; named in the variant as above
    (results in dream_ppo_walker..._model_updates<n>.json)"""
    validation_episodes: int | None = None
    """the recipe's --validation_episodes (0: the last round's policy); named in the variant as above"""
    first_steps: int | None = None
    """the recipe's --first_steps, random real steps before the first round; named as above"""
    run_dir: str = "benchmarks/runs/dream_ppo_walker"
    jobs: int = 1
    """seeds at once (each one process on one core: 2 on a 2-core machine)"""
    report_only: bool = False


VARIANT_FLAGS = {"gamma": "ppo.gamma", "dream_steps": "dream_steps", "model_updates": "model_updates",
                 "validation_episodes": "validation_episodes", "first_steps": "first_steps"}
"""benchmark settings passed on to the recipe when given (the recipe's flag for each)"""


def _given(config: Config) -> dict:
    return {name: getattr(config, name) for name in VARIANT_FLAGS if getattr(config, name) is not None}


def run_seed(config: Config, seed: int) -> Path:
    return run_recipe("dream_ppo_walker", _runs(config) / f"seed{seed}", f"--world_model={config.world_model}",
                      f"--seed={seed}", *(["--learned_ends=True"] if config.learned_ends else []),
                      *(f"--{VARIANT_FLAGS[name]}={value}" for name, value in _given(config).items()))


def _variant(config: Config) -> str:
    """The suffix of a variant's run folder and results file."""
    return "_learned_ends" * config.learned_ends + "".join(f"_{name}{value}" for name, value in _given(config).items())


def _runs(config: Config) -> Path:
    return ROOT / (config.run_dir + _variant(config))


def report(config: Config) -> dict:
    runs = [_runs(config) / f"seed{seed}" for seed in config.seeds]
    runs = [run for run in runs if (run / "summary.json").exists()]
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    settings = [json.loads((run / "config.json").read_text()) for run in runs]
    validated = {s.get("validation_episodes", 0) for s in settings}
    chosen = (f"the policy of the round with the best mean return on its {', '.join(map(str, validated))} validation "
              "episodes (real, kept as data), deterministic" if validated != {0} else "final deterministic policy")
    results = {**provenance(), "protocol": f"{chosen}, 10 real episodes from reset seed 10,000 + seed",
               "world_model": config.world_model,
               "dream_ends": "the learned continue head" if config.learned_ends else "the task's termination rule",
               "gamma_per_seed": [s["ppo"]["gamma"] for s in settings],
               "dream_steps_per_seed": [s["dream_steps"] for s in settings],
               "first_steps_per_seed": [s["first_steps"] for s in settings],
               "validation_episodes_per_seed": [s.get("validation_episodes", 0) for s in settings],
               "policy_round_per_seed": [s.get("policy_round", s["rounds"]) for s in summaries],
               "seeds": [int(run.name.removeprefix("seed")) for run in runs],
               "per_seed": [s["real_return"] for s in summaries],
               "real_steps_per_seed": [s["real_steps"] for s in summaries],
               "hours_per_seed": [s["hours"] for s in summaries],
               "dream_to_real_gap_per_seed": [s["dream_to_real_gap"] for s in summaries],
               "gap_protocol": "the run's policy's dreamed return minus its real return over the dream's horizon, "
                               "both from real first observations"}
    name = "dream_ppo_walker" if config.world_model == "ensemble" else f"dream_ppo_walker_{config.world_model}"
    name += _variant(config)
    return write_results(name, results, "Walker2d-v4")


if __name__ == "__main__":
    seed_by_seed(parse_config(Config), run_seed, report)
