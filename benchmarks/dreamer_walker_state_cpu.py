"""Dreamer's cpu preset on dm-control walker-walk from state, 100k env steps, over seeds.

    python benchmarks/dreamer_walker_state_cpu.py                      # run what is missing, then report
    python benchmarks/dreamer_walker_state_cpu.py --report_only=True   # report from the runs on disk

Each seed is one ``recipes/dreamer.py --env=dmc:walker-walk --preset=cpu`` run in
``<run_dir>/seed<k>``, one after another (``--jobs=2``: two at once); finished runs are skipped and killed
ones resume.
Protocol: the final deterministic actor over 10 fresh episodes (reset seeds 20,000 and up), IQM
and mean with 95% stratified bootstrap CIs over seeds; the wall-clock of each run. Writes
benchmarks/results/dreamer_walker_state_cpu.json.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, provenance, run_recipe, seed_by_seed, write_results
from dreamer_final_eval import final_eval

from worldkit.config import parse_config


@dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    total_steps: int = 100_000
    run_dir: str = "benchmarks/runs/dreamer_state_cpu"
    episodes: int = 10
    """fresh evaluation episodes of each final actor"""
    jobs: int = 1
    """seeds at once (each one process on one core: 2 on a 2-core machine)"""
    report_only: bool = False


def run_seed(config: Config, seed: int) -> Path:
    run_dir = run_recipe("dreamer", ROOT / config.run_dir / f"seed{seed}", "--env=dmc:walker-walk", "--preset=cpu",
                         f"--seed={seed}", f"--total_steps={config.total_steps}")
    if not (run_dir / "final_eval.json").exists():
        final_eval(run_dir, config.episodes)
    return run_dir


def report(config: Config) -> dict:
    finished = [ROOT / config.run_dir / f"seed{seed}" for seed in config.seeds]
    finished = [run for run in finished if (run / "final_eval.json").exists()]
    finals = [json.loads((run / "final_eval.json").read_text())["mean"] for run in finished]
    hours = [json.loads((run / "summary.json").read_text())["wall_clock_seconds"] / 3600 for run in finished]
    results = {**provenance(), "protocol": f"final deterministic actor, {config.episodes} episodes from reset seed "
                                           "20,000, at 100k env steps (action repeat 2)",
               "seeds": [int(run.name.removeprefix("seed")) for run in finished],
               "per_seed": finals, "hours_per_seed": [round(h, 3) for h in hours]}
    return write_results("dreamer_walker_state_cpu", results, "dmc:walker-walk")


if __name__ == "__main__":
    seed_by_seed(parse_config(Config), run_seed, report)
