"""Pluggable dreaming: every controller trained only in every world model's dream, then scored in the real env.

    python benchmarks/pluggable_dreaming.py                       # every cell missing, then the table
    python benchmarks/pluggable_dreaming.py --families sidewalk --controllers cmaes --seeds 0
    python benchmarks/pluggable_dreaming.py --report_only=True

World models (one of each family, trained beforehand; none is trained here):
- ``walker2d``: the dynamics ensemble of a ``recipes/dream_ppo_walker.py`` run (``--walker_run``), on
  Walker2d-v4, with that run's own episodes as the dreams' starts;
- ``dmc_walker``: the RSSM of the shipped Dreamer agent ``checkpoints/dmc-walker-dreamer``, on dm-control
  walker-walk from state (each action held for 2 steps, as it trained), with random-policy episodes as starts;
- ``sidewalk``: the shipped V + M (``checkpoints/sidewalk-vae`` and ``sidewalk-mdnrnn``), on MiniWorld
  Sidewalk, with random-policy episodes as starts.

Controllers, each trained from scratch in the dream alone: PPO through ``DreamEnv``, CMA-ES (a linear
controller, the population as one batch) and the Dreamer actor-critic (gradients through the
imagination). Each cell (family, controller, seed) is scored on ``--eval_episodes`` real episodes
(reset seeds 10,000 + seed; the real return, and the success rate on Sidewalk) and on as many
dreams of ``--horizon`` steps; the dream-to-real gap compares the dream's return with the real
return over the same number of steps. Finished cells are kept in ``<run_dir>/<cell>.json`` and in
the results JSON, and skipped.
Writes benchmarks/results/pluggable_dreaming.json.
"""

import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from common import ROOT, interval_estimates, provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.checkpoints import from_pretrained
from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.cmaes import CMAESConfig
from worldkit.controllers.cmaes import train_in_dream as cmaes_in_dream
from worldkit.controllers.dreamer import DreamerActorCritic, DreamerConfig
from worldkit.controllers.dreamer import train_in_dream as dreamer_in_dream
from worldkit.data import EpisodeStore, collect
from worldkit.data.driver import drive
from worldkit.dream.driver import evaluate_in_real_env
from worldkit.dream.env import DreamEnv, real_start_states
from worldkit.dream.imagine import imagine
from worldkit.envs import make_env
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import select_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel

FAMILIES = ("walker2d", "dmc_walker", "sidewalk")
SETTINGS = ("horizon", "ppo_steps", "cmaes_generations", "dreamer_updates", "start_episodes", "eval_episodes")
CONTROLLERS = ("ppo", "cmaes", "dreamer")
WORLD_MODELS = {"dmc_walker": "dmc-walker-dreamer", "sidewalk": "sidewalk-vae + sidewalk-mdnrnn"}
"""the shipped world model of each family but walker2d (whose model is ``--walker_run``'s)"""


@dataclass
class Config:
    families: tuple[str, ...] = FAMILIES
    controllers: tuple[str, ...] = CONTROLLERS
    seeds: tuple[int, ...] = (0, 1, 2)
    walker_run: str = "benchmarks/runs/dream_ppo_walker/seed0"
    """a finished recipes/dream_ppo_walker.py run (ensemble): its world model and episodes"""
    start_episodes: int = 30
    """random-policy episodes collected for the dm-control and Sidewalk dreams' starts"""
    horizon: int = 100
    """steps per dream, for every controller and for the dream-to-real gap"""
    ppo_steps: int = 200_000
    """dreamed steps PPO trains for"""
    cmaes_generations: int = 50
    dreamer_updates: int = 2_000
    eval_episodes: int = 10
    run_dir: str = "benchmarks/runs/pluggable_dreaming"
    report_only: bool = False

    def __post_init__(self) -> None:
        for name, values, known in (("families", self.families, FAMILIES), ("controllers", self.controllers, CONTROLLERS)):
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise ValueError(f"unknown {name} {unknown}; known: {', '.join(known)}")


def world_model_name(family: str, config: Config) -> str:
    return config.walker_run if family == "walker2d" else WORLD_MODELS[family]


def world_model_and_starts(family: str, config: Config):
    """(world model, start states, real env spec, env steps each action is held for) of one family."""
    if family == "walker2d":
        run = ROOT / config.walker_run
        if not (run / "checkpoints" / "world_model").exists():
            raise SystemExit(f"{run} holds no finished dream-PPO run; run python benchmarks/dream_ppo_walker.py first, "
                             "or give --walker_run")
        model = from_pretrained(run / "checkpoints" / "world_model")
        store = EpisodeStore(run / "data")
        episodes = [store.episode(i) for i in range(max(0, len(store) - 200), len(store))]
        spec, repeat = "Walker2d-v4", 1
    elif family == "dmc_walker":
        agent = from_pretrained(WORLD_MODELS[family])
        model, spec, repeat, episodes = agent.world_model, "dmc:walker-walk", agent.action_repeat, []
        with make_env(spec, action_repeat=repeat) as env:  # random play at the agent's action repeat
            drive(env, None, episodes=config.start_episodes, seed=0, on_episode=episodes.append)
    else:
        spec, repeat = "miniworld:Sidewalk", 1
        model = VAEMDNWorldModel.compose(ConvVAE.from_pretrained("sidewalk-vae"), MDNRNN.from_pretrained("sidewalk-mdnrnn"))
        store = collect(ROOT / config.run_dir / f"starts-{family}", spec, episodes=config.start_episodes, seed=0,
                        progress=False)
        episodes = list(store)
    model.eval().requires_grad_(False)
    return model, real_start_states(model, episodes), spec, repeat


def train(controller: str, model, starts, config: Config, seed: int):
    """A controller trained in the dream alone; returns its act(features) -> actions."""
    torch.manual_seed(seed)
    if controller == "ppo":
        dreams = DreamEnv(model, starts, 64, horizon=config.horizon)
        ppo = PPO(PPOConfig(total_steps=config.ppo_steps, num_envs=64, num_steps=64, num_minibatches=8,
                            anneal_lr=False, seed=seed), dreams)
        ppo.learn(progress=False)
        return lambda features: ppo.agent.act(features, deterministic=True)
    if controller == "cmaes":
        search = CMAESConfig(population=32, generations=config.cmaes_generations, rollouts=8, horizon=config.horizon,
                             temperature=1.0, seed=seed)
        return cmaes_in_dream(model, starts, search, progress=False).controller.act
    actor_critic = DreamerActorCritic(model.feature_dim, model.action_space, hidden=256, layers=2)
    dreamer_in_dream(model, starts, DreamerConfig(horizon=15), config.dreamer_updates, batch_size=256, seed=seed,
                     actor_critic=actor_critic)
    return lambda features: actor_critic.act(features, deterministic=True)


def score(model, act, starts, spec: str, repeat: int, config: Config, seed: int) -> dict:
    with make_env(spec, action_repeat=repeat) as env:
        real = evaluate_in_real_env(model, act, env, config.eval_episodes, seed=10_000 + seed)
        at_horizon = evaluate_in_real_env(model, act, env, config.eval_episodes, seed=10_000 + seed,
                                          max_steps=config.horizon)
    success = real["success_rate"] if spec.startswith("miniworld") else None  # reaching the goal; MuJoCo has none
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(starts[0]), (config.eval_episodes,), generator=generator)
    with torch.no_grad():
        dream = imagine(model, select_state(starts, picks), act, config.horizon, generator=generator)
    dream_return = float(dream.returns().mean())
    return {"real_return": real["mean_return"], "success_rate": success,
            "real_return_at_horizon": at_horizon["mean_return"], "dream_return": dream_return,
            "dream_to_real_gap": dream_return - at_horizon["mean_return"]}


def run_cells(config: Config) -> None:
    folder = ROOT / config.run_dir
    folder.mkdir(parents=True, exist_ok=True)
    for family in config.families:
        cells = [(c, s) for c in config.controllers for s in config.seeds
                 if _finished(folder / f"{family}-{c}-seed{s}.json", config) is None]
        if not cells:
            continue
        model, starts, spec, repeat = world_model_and_starts(family, config)
        for controller, seed in cells:
            start = time.perf_counter()
            act = train(controller, model, starts, config, seed)
            row = {"family": family, "world_model": world_model_name(family, config), "env": spec,
                   "controller": controller, "seed": seed, "settings": {k: getattr(config, k) for k in SETTINGS},
                   **score(model, act, starts, spec, repeat, config, seed), "minutes": (time.perf_counter() - start) / 60}
            (folder / f"{family}-{controller}-seed{seed}.json").write_text(json.dumps(row, indent=2))
            print(json.dumps(row), flush=True)


def restore_recorded_cells(config: Config) -> None:
    """Cells recorded in the results JSON with the same settings and world model whose files are gone
    are written back to ``<run_dir>``, so a later sitting runs only the missing cells (the recorded
    ones need no world model)."""
    path = ROOT / "benchmarks" / "results" / "pluggable_dreaming.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    if recorded.get("settings") != {k: getattr(config, k) for k in SETTINGS}:
        return
    folder = ROOT / config.run_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, cell in recorded["cells"].items():
        family, controller = name.split("/")
        if cell.get("world_model") != world_model_name(family, config):
            continue
        for i, seed in enumerate(cell["seeds"]):
            row_path = folder / f"{family}-{controller}-seed{seed}.json"
            if _finished(row_path, config) is None:
                row = {"family": family, "world_model": world_model_name(family, config), "env": cell["env"],
                       "controller": controller, "seed": seed,
                       "settings": recorded["settings"], "restored_from": path.name,
                       **{key: cell[key][i] for key in ("real_return", "success_rate", "dream_to_real_gap", "minutes")}}
                row_path.write_text(json.dumps(row, indent=2))


def _finished(path, config: Config) -> "dict | None":
    """The cell kept in ``path``, if there is one and it dreamed in the world model ``config`` names."""
    row = json.loads(path.read_text()) if path.exists() else None
    return row if row and row.get("world_model") == world_model_name(row["family"], config) else None


def report(config: Config) -> dict:
    rows = [_finished(path, config) for path in sorted((ROOT / config.run_dir).glob("*-seed*.json"))]
    rows = [row for row in rows if row is not None]
    cells: dict = {}
    for row in rows:
        cell = cells.setdefault(f"{row['family']}/{row['controller']}", {"env": row["env"],
                                                                          "world_model": row["world_model"], "seeds": [],
                                                                          "real_return": [], "success_rate": [],
                                                                          "dream_to_real_gap": [], "minutes": []})
        for key in ("seeds", "real_return", "success_rate", "dream_to_real_gap", "minutes"):
            cell[key].append(row["seed" if key == "seeds" else key])
    for cell in cells.values():
        metric = "success_rate" if cell["env"].startswith("miniworld") else "real_return"
        cell["stats"] = interval_estimates({cell["env"]: cell[metric]}) if len(cell["seeds"]) > 1 else None
    settings = [row["settings"] for row in rows]
    if any(s != settings[0] for s in settings):
        raise SystemExit(f"the cells in {config.run_dir} were trained with different settings; keep one setting per folder")
    settings = settings[0] if settings else {k: getattr(config, k) for k in SETTINGS}
    results = {**provenance(), "protocol": f"{settings['eval_episodes']} real episodes from reset seeds 10,000 + seed "
               f"(deterministic controllers); dream-to-real gap over {settings['horizon']} steps",
               "settings": settings, "walker_run": config.walker_run, "cells": cells}
    (ROOT / "benchmarks" / "results" / "pluggable_dreaming.json").write_text(json.dumps(results, indent=2) + "\n")
    for name, cell in cells.items():
        print(f"{name:24s} seeds {cell['seeds']}  real {np.round(cell['real_return'], 1).tolist()}  "
              f"success {cell['success_rate']}  gap {np.round(cell['dream_to_real_gap'], 1).tolist()}")
    return results


if __name__ == "__main__":
    cfg = parse_config(Config)
    torch.set_num_threads(1)  # one core per benchmark, as the other benchmarks use
    restore_recorded_cells(cfg)
    if not cfg.report_only:
        run_cells(cfg)
    report(cfg)
