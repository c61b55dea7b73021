"""Wall-clock cost of the world model in world-model-assisted PPO, per env step, vs our PPO.

    python benchmarks/wm_overhead.py [--steps=32768] [--rounds=3]

The learners run in this process, alternating, on Walker2d-v4 with the same hyperparameters and
one torch thread; the ratio of their seconds per env step is the overhead (the paper draft claims
under 5%). ``wm_ppo`` is the recipe's default (z = 32, alpha = 0, beta = 1); ``wm_ppo_first_epoch``
trains its world model in the first of PPO's epochs only (``--wm_epochs=1``); ``encoder_only`` has
beta = alpha = 0: the actor and critic still read z = E(s), but no world-model loss is computed,
which separates the cost of the design's deeper policy from that of training the model. Also
reports CPU seconds, which a busy machine distorts less. Writes benchmarks/results/wm_overhead.json.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import provenance

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
    if method != "ppo":
        obs_dim, action_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
        settings = {"wm_ppo": {}, "wm_ppo_first_epoch": {"wm_epochs": 1}, "encoder_only": {"beta": 0.0}}[method]
        hooks = [WorldModelAssist(LatentMLPWorldModel(obs_dim, action_dim, 32), alpha=0.0, **settings)]
    ppo = PPO(PPOConfig(total_steps=config.steps, seed=seed), envs, hooks)
    wall, cpu = time.perf_counter(), time.process_time()
    history = ppo.learn(progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    envs.close()
    return {"seconds": wall, "cpu_seconds": cpu, "steps": ppo.global_step,
            "rollout_seconds": sum(h["rollout_time"] for h in history),
            "update_seconds": sum(h["update_time"] for h in history)}


def main(config: Config) -> dict:
    runs: dict[str, list[dict]] = {"ppo": [], "wm_ppo": [], "wm_ppo_first_epoch": [], "encoder_only": []}
    for round_ in range(config.rounds):
        for method in runs:
            runs[method].append(timed_run(method, config, seed=round_ + 1))
            print(method, runs[method][-1], flush=True)
    per_step = {m: float(np.median([r["seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    cpu_per_step = {m: float(np.median([r["cpu_seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    result = {
        **provenance(), "env": config.env, "steps_per_run": config.steps,
        "rounds": config.rounds, "load_average": list(os.getloadavg()), "goal_ratio": 1.05,
        "seconds_per_step": per_step, "cpu_seconds_per_step": cpu_per_step,
        "ratio": per_step["wm_ppo"] / per_step["ppo"], "cpu_ratio": cpu_per_step["wm_ppo"] / cpu_per_step["ppo"],
        "encoder_only_ratio": per_step["encoder_only"] / per_step["ppo"],
        "first_epoch_ratio": per_step["wm_ppo_first_epoch"] / per_step["ppo"],
        "rollout_ratio": _median_ratio(runs, "rollout_seconds"), "update_ratio": _median_ratio(runs, "update_seconds"),
        "runs": runs,
    }
    (ROOT / "benchmarks" / "results" / "wm_overhead.json").write_text(json.dumps(result, indent=2))
    print(f"WM-PPO / PPO wall-clock per step: {result['ratio']:.3f}  (CPU seconds: {result['cpu_ratio']:.3f}); "
          f"rollouts {result['rollout_ratio']:.3f}, updates {result['update_ratio']:.3f}; "
          f"the world model trained in the first epoch only: {result['first_epoch_ratio']:.3f}; "
          f"the encoder alone (no world-model loss): {result['encoder_only_ratio']:.3f}")
    return result


def _median_ratio(runs: dict[str, list[dict]], key: str) -> float:
    """WM-PPO's median of ``key`` per step over PPO's."""
    per_step = {m: np.median([r[key] / r["steps"] for r in runs[m]]) for m in ("ppo", "wm_ppo")}
    return float(per_step["wm_ppo"] / per_step["ppo"])


if __name__ == "__main__":
    main(parse_config(Config))
