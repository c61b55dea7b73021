"""Wall-clock cost of the world model in world-model-assisted PPO, per env step, vs our PPO.

    python benchmarks/wm_overhead.py [--steps=32768] [--rounds=3]

Both learners run in this process, alternating, on Walker2d-v4 with the same hyperparameters
and one torch thread; the ratio of their seconds per env step is the overhead (the seed claims
under 5%). Also reports CPU seconds, which a busy machine distorts less. Writes
benchmarks/results/wm_overhead.json.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.wm_ppo import WorldModelAssist
from worldkit.envs import make_vector_env
from worldkit.models import LatentMLPWorldModel

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    steps: int = 32_768
    rounds: int = 3
    env: str = "Walker2d-v4"


def timed_run(method: str, config: Config, seed: int) -> dict:
    envs = make_vector_env(config.env, 1)
    hooks = []
    if method == "wm_ppo":
        obs_dim, action_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
        hooks = [WorldModelAssist(LatentMLPWorldModel(obs_dim, action_dim, 32))]
    ppo = PPO(PPOConfig(total_steps=config.steps, seed=seed), envs, hooks)
    wall, cpu = time.perf_counter(), time.process_time()
    history = ppo.learn(progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    envs.close()
    return {"seconds": wall, "cpu_seconds": cpu, "steps": ppo.global_step,
            "rollout_seconds": sum(h["rollout_time"] for h in history),
            "update_seconds": sum(h["update_time"] for h in history)}


def main(config: Config) -> dict:
    runs: dict[str, list[dict]] = {"ppo": [], "wm_ppo": []}
    for round_ in range(config.rounds):
        for method in runs:
            runs[method].append(timed_run(method, config, seed=round_ + 1))
            print(method, runs[method][-1], flush=True)
    per_step = {m: float(np.median([r["seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    cpu_per_step = {m: float(np.median([r["cpu_seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    result = {
        "command": "python benchmarks/wm_overhead.py", "env": config.env, "steps_per_run": config.steps,
        "rounds": config.rounds, "load_average": list(os.getloadavg()), "goal_ratio": 1.05,
        "seconds_per_step": per_step, "cpu_seconds_per_step": cpu_per_step,
        "ratio": per_step["wm_ppo"] / per_step["ppo"], "cpu_ratio": cpu_per_step["wm_ppo"] / cpu_per_step["ppo"],
        "runs": runs,
    }
    (ROOT / "benchmarks" / "results" / "wm_overhead.json").write_text(json.dumps(result, indent=2))
    print(f"WM-PPO / PPO wall-clock per step: {result['ratio']:.3f}  (CPU seconds: {result['cpu_ratio']:.3f})")
    return result


if __name__ == "__main__":
    main(parse_config(Config))
