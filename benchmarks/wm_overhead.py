"""Wall-clock cost of the world model in world-model-assisted PPO, per env step, vs our PPO.

    python benchmarks/wm_overhead.py [--steps=32768] [--rounds=3]

The learners run alternating, each run in a fresh process (compiled code of one learner never
sits in another's cache), on Walker2d-v4 with the same hyperparameters and one torch thread; the
ratio of their seconds per env step is the overhead (the paper draft claims under 5%). PPO's settings are the recipe's for the env (``ppo_preset_for``). ``wm_ppo`` is the
recipe's ``--preset=default``, read from the recipe itself; ``wm_ppo_other_epochs`` is the same with
the world model trained in the other number of PPO's epochs (every one where the default trains it
in the first only, ``--wm_epochs=1`` where it trains in all); ``encoder_only`` has beta = alpha = 0:
the actor and critic still read z = E(s), but no world-model loss is computed, which separates the
cost of the design's deeper policy from that of training the model. Each compiles its minibatch
loss, as the recipe's 1M-step runs do (``PPOConfig.compile``); ``ppo_eager`` and ``wm_ppo_eager``
are PPO and the default without compiling. A compiled run first compiles in a short warm-up run,
which is not timed. Also reports CPU seconds, which a busy machine distorts less. Writes
benchmarks/results/wm_overhead.json.
"""

import dataclasses
import functools
import importlib.util
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import provenance

from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.ppo import ppo_preset_for
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
    hooks, eager = [], method.endswith("_eager")
    method = method.removesuffix("_eager")
    if method != "ppo":
        obs_dim, action_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
        default = _recipe_default()
        settings = {"wm_ppo": {}, "wm_ppo_other_epochs": {"wm_epochs": _other_epochs()},
                    "encoder_only": {"beta": 0.0}}[method]
        settings = {"alpha": default["alpha"], "beta": default["beta"], "clip_apart": default["clip_apart"],
                    "wm_epochs": default.get("wm_epochs"), **settings}
        model = LatentMLPWorldModel(obs_dim, action_dim, default["latent_dim"], recon_weight=default["recon_weight"])
        hooks = [WorldModelAssist(model, **settings)]
    ppo_config = dataclasses.replace(PPOConfig.preset(ppo_preset_for(config.env)), total_steps=config.steps, seed=seed,
                                     compile=not eager)
    ppo = PPO(ppo_config, envs, hooks)
    wall, cpu = time.perf_counter(), time.process_time()
    history = ppo.learn(progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    envs.close()
    return {"seconds": wall, "cpu_seconds": cpu, "steps": ppo.global_step,
            "rollout_seconds": sum(h["rollout_time"] for h in history),
            "update_seconds": sum(h["update_time"] for h in history)}


def warmed_up_run(method: str, config: Config, seed: int) -> dict:
    """``timed_run``, after a short untimed run that compiles the learner's loss (where it compiles)."""
    if not method.endswith("_eager"):
        timed_run(method, dataclasses.replace(config, steps=2048), seed=0)
    return timed_run(method, config, seed)


def main(config: Config) -> dict:
    runs: dict[str, list[dict]] = {"ppo": [], "wm_ppo": [], "wm_ppo_other_epochs": [], "encoder_only": [],
                                   "ppo_eager": [], "wm_ppo_eager": []}
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as fresh_process:
        for round_ in range(config.rounds):
            for method, timings in runs.items():
                timings.append(fresh_process.submit(warmed_up_run, method, config, round_ + 1).result())
                print(method, timings[-1], flush=True)
    per_step = {m: float(np.median([r["seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    cpu_per_step = {m: float(np.median([r["cpu_seconds"] / r["steps"] for r in rs])) for m, rs in runs.items()}
    result = {
        **provenance(), "env": config.env, "steps_per_run": config.steps,
        "rounds": config.rounds, "load_average": list(os.getloadavg()), "goal_ratio": 1.05,
        "seconds_per_step": per_step, "cpu_seconds_per_step": cpu_per_step,
        "ratio": per_step["wm_ppo"] / per_step["ppo"], "cpu_ratio": cpu_per_step["wm_ppo"] / cpu_per_step["ppo"],
        "encoder_only_ratio": per_step["encoder_only"] / per_step["ppo"],
        "eager_ratio": per_step["wm_ppo_eager"] / per_step["ppo_eager"],
        "compile_speedup": {"ppo": per_step["ppo_eager"] / per_step["ppo"],
                            "wm_ppo": per_step["wm_ppo_eager"] / per_step["wm_ppo"]},
        "other_epochs": _other_epochs(), "other_epochs_ratio": per_step["wm_ppo_other_epochs"] / per_step["ppo"],
        "default": _recipe_default(), "ppo_preset": ppo_preset_for(config.env),
        "rollout_ratio": _median_ratio(runs, "rollout_seconds"), "update_ratio": _median_ratio(runs, "update_seconds"),
        "runs": runs,
    }
    (ROOT / "benchmarks" / "results" / "wm_overhead.json").write_text(json.dumps(result, indent=2))
    print(f"WM-PPO / PPO wall-clock per step: {result['ratio']:.3f}  (CPU seconds: {result['cpu_ratio']:.3f}); "
          f"rollouts {result['rollout_ratio']:.3f}, updates {result['update_ratio']:.3f}; "
          f"with --wm_epochs={result['other_epochs']}: {result['other_epochs_ratio']:.3f}; "
          f"the encoder alone (no world-model loss): {result['encoder_only_ratio']:.3f}; "
          f"without compiling: {result['eager_ratio']:.3f} (compiling makes PPO {result['compile_speedup']['ppo']:.2f}x "
          f"and WM-PPO {result['compile_speedup']['wm_ppo']:.2f}x faster)")
    return result


@functools.cache
def _recipe_default() -> dict:
    """The world-model settings of ``recipes/wm_ppo_walker.py --preset=default``."""
    spec = importlib.util.spec_from_file_location("wm_ppo_recipe", ROOT / "recipes" / "wm_ppo_walker.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe.PRESETS["default"]


def _other_epochs() -> int | None:
    """The variant's ``wm_epochs``: 1 where the default trains the world model in every epoch (None), else None."""
    return 1 if _recipe_default().get("wm_epochs") is None else None


def _median_ratio(runs: dict[str, list[dict]], key: str) -> float:
    """WM-PPO's median of ``key`` per step over PPO's."""
    per_step = {m: np.median([r[key] / r["steps"] for r in runs[m]]) for m in ("ppo", "wm_ppo")}
    return float(per_step["wm_ppo"] / per_step["ppo"])


if __name__ == "__main__":
    main(parse_config(Config))
