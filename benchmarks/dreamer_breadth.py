"""Dreamer's cpu preset beyond dm-control, one seed each, beside the matching peer of each task.

    python benchmarks/dreamer_breadth.py                      # run what is missing, then report
    python benchmarks/dreamer_breadth.py --tasks walker2d     # one task
    python benchmarks/dreamer_breadth.py --report_only=True   # report from the runs on disk

- ``walker2d``: ``recipes/dreamer.py --env=gym:Walker2d-v4 --preset=cpu`` for 300k env steps,
  beside our PPO at 1M steps (``benchmarks/results/wm_ppo_default_vs_ppo.json``). Protocol:
  Dreamer's final deterministic actor over 10 episodes from reset seed 20,000; PPO's final
  deterministic policy over 5 episodes (seeds 10,000 + seed), IQM over its seeds.
- ``sidewalk``: ``recipes/dreamer.py --env=miniworld:Sidewalk --preset=cpu`` (64x64 pixels,
  Discrete actions) given the wall-clock that World Models (VAE + MDN-RNN + CMA-ES,
  ``benchmarks/sidewalk_success.py``) takes per seed, beside it. Protocol: success rate over 100
  episodes from reset seed 20,000 (World Models: 100 episodes from seed 10,000 + seed).

Runs live in ``<run_dir>/<task>``; a killed run resumes. Writes benchmarks/results/dreamer_breadth.json.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, provenance, run_recipe
from dreamer_final_eval import final_eval

from worldkit.config import parse_config

WORLD_MODELS_HOURS = 0.75
"""Sidewalk's budget when World Models has no finished seed to take it from (its goal: 45 min a seed)"""


@dataclass
class Config:
    tasks: tuple[str, ...] = ("walker2d", "sidewalk")
    seed: int = 0
    run_dir: str = "benchmarks/runs/dreamer_breadth"
    report_only: bool = False


def _load(name: str) -> dict | None:
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def sidewalk_hours() -> float:
    """World Models' mean wall-clock per seed from scratch, the budget Dreamer gets on Sidewalk."""
    world_models = _load("sidewalk_from_scratch")
    if world_models and world_models.get("minutes_per_seed"):
        minutes = world_models["minutes_per_seed"]
        return round(sum(minutes) / len(minutes) / 60, 3)
    return WORLD_MODELS_HOURS


def run_task(config: Config, task: str) -> Path:
    folder = ROOT / config.run_dir / task
    if task == "walker2d":
        run_recipe("dreamer", folder, "--env=gym:Walker2d-v4", "--preset=cpu", "--total_steps=300000",
                   f"--seed={config.seed}")
        episodes = 10
    elif task == "sidewalk":
        run_recipe("dreamer", folder, "--env=miniworld:Sidewalk", "--preset=cpu", "--total_steps=10000000",
                   f"--hours={sidewalk_hours()}", "--eval_every=2000", f"--seed={config.seed}")
        episodes = 100
    else:
        raise SystemExit(f"unknown task {task!r}: walker2d or sidewalk")
    if not (folder / "final_eval.json").exists():
        final_eval(folder, episodes)
    return folder


def report(config: Config) -> dict:
    results = {**provenance(), "seed": config.seed, "tasks": {}}
    for task in config.tasks:
        folder = ROOT / config.run_dir / task
        if not (folder / "final_eval.json").exists():
            continue
        final = json.loads((folder / "final_eval.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        row = {"env": summary["env"], "env_steps": summary["env_steps"], "hours": round(summary["wall_clock_seconds"] / 3600, 3),
               "final_return": final["mean"], "episodes": final["episodes"]}
        if task == "walker2d":
            ppo = _load("wm_ppo_default_vs_ppo") or {}
            row["peer"] = {"name": "PPO at 1M steps (deterministic evaluation)",
                           "per_seed": ppo.get("eval_per_seed", {}).get("Walker2d-v4/ppo", [])}
        else:
            world_models = _load("sidewalk_from_scratch") or {}
            row["success_rate"] = final["success_rate"]
            row["peer"] = {"name": "World Models from scratch (success rate)", "per_seed": world_models.get("per_seed", []),
                           "minutes_per_seed": world_models.get("minutes_per_seed", [])}
        results["tasks"][task] = row
    path = ROOT / "benchmarks" / "results" / "dreamer_breadth.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["tasks"]))
    return results


def main(config: Config) -> None:
    if not config.report_only:
        for task in config.tasks:
            run_task(config, task)
            report(config)
    report(config)


if __name__ == "__main__":
    main(parse_config(Config))
