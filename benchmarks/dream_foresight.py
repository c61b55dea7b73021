"""How far ahead does a dream foresee a real fall, and does more world-model training move that horizon?

    python benchmarks/dream_foresight.py --run=benchmarks/runs/dream_ppo_walker_model_updates2000_first_steps15000/seed0

Takes a ``recipes/dream_ppo_walker.py`` run (ensemble dream) and its last round's policy, runs the
deterministic policy on real Walker2d-v4 episodes (reset seeds 20,000 + i) and, for each episode that
ends in a fall at step T, dreams 64 times from the real state at T - k (each step by a random member,
the same policy acting) for k + 100 steps. A dream foresees the fall when it ends within 25 steps of
the real end. Then it trains the run's ensemble further on the run's own episodes, ``--chunk``
updates at a time, and measures again. The run folder is read, never written.
Writes benchmarks/results/dream_foresight.json.
"""

import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from common import ROOT, provenance

import worldkit  # noqa: F401
from worldkit.config import parse_config
from worldkit.controllers import PPOConfig
from worldkit.data import EpisodeStore
from worldkit.envs.termination import termination_rule
from worldkit.models.ensemble import EnsembleState
from worldkit.runs.dream_ppo import (
    DreamPPOConfig,
    _agent,
    _new_world_model,
    _train_world_model,
)
from worldkit.runs.files import write_json


@dataclass
class Config:
    run: str = "benchmarks/runs/dream_ppo_walker_model_updates2000_first_steps15000/seed0"
    """a dream-PPO run folder (ensemble) with state.pt and data/"""
    episodes: int = 3
    before: tuple[int, ...] = (150, 100, 75, 50)
    """how many steps before the real fall the dreams start"""
    dreams: int = 64
    chunks: int = 4
    chunk: int = 4_000
    """world-model updates between measurements"""


def real_episodes(agent, episodes: int) -> list[tuple[np.ndarray, bool]]:
    env, out = gym.make("Walker2d-v4"), []
    for i in range(episodes):
        obs, _ = env.reset(seed=20_000 + i)
        trajectory, terminated, truncated = [obs], False, False
        while not (terminated or truncated):
            action = agent.act(torch.as_tensor(obs, dtype=torch.float32)[None], deterministic=True)[0].numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            trajectory.append(obs)
        out.append((np.stack(trajectory), terminated))
    env.close()
    return out


@torch.no_grad()
def foresight(model, agent, ends, episodes, config: Config) -> dict[str, list[float]]:
    """Per k: the fraction of dreams from T - k that end within 25 steps of the real fall, per falling episode."""
    out: dict[str, list[float]] = {str(k): [] for k in config.before}
    for trajectory, terminated in episodes:
        fall = len(trajectory) - 1
        for k in config.before:
            if not terminated or fall - k < 0:
                continue
            state = EnsembleState(torch.as_tensor(np.repeat(trajectory[fall - k][None], config.dreams, 0)).float())
            generator, end = torch.Generator().manual_seed(0), np.full(config.dreams, -1)
            for t in range(k + 100):
                state, _, _ = model.imagine(state, agent.act(state.obs, deterministic=True), generator=generator)
                end[(end < 0) & ends(state.obs).numpy()] = t + 1
            out[str(k)].append(float(np.mean((end > 0) & (np.abs(end - k) <= 25))))
    return out


def main(config: Config) -> dict:
    run = ROOT / config.run
    if not (run / "state.pt").exists():
        raise SystemExit(f"{run} holds no dream-PPO run (no state.pt); run python benchmarks/dream_ppo_walker.py first")
    torch.set_num_threads(1)
    saved = torch.load(run / "state.pt", weights_only=True)
    saved_settings = json.loads((run / "config.json").read_text())
    settings = DreamPPOConfig(**{**{key: saved_settings[key] for key in ("ensemble_size", "model_batch_size", "seed")},
                                 "ensemble_hidden": tuple(saved_settings["ensemble_hidden"]),
                                 "ppo": PPOConfig(**saved_settings["ppo"]), "model_updates": config.chunk})
    with gym.make("Walker2d-v4") as env:
        model = _new_world_model(settings, env.observation_space, env.action_space, "gym:Walker2d-v4")
        ends = termination_rule(env)
    model.load_state_dict(saved["model"])
    optimizer = model.configure_optimizers()
    optimizer.load_state_dict(saved["model_optimizer"])
    agent = _agent(settings, model, saved["ppo"])
    episodes = real_episodes(agent, config.episodes)
    store = EpisodeStore(run / "data")
    rows = [{"extra_updates": 0, "foresees": foresight(model, agent, ends, episodes, config)}]
    print(rows[-1], flush=True)
    for chunk in range(config.chunks):
        _train_world_model(settings, model, optimizer, store, 1_000 + chunk)
        rows.append({"extra_updates": (chunk + 1) * config.chunk, "foresees": foresight(model, agent, ends, episodes, config)})
        print(rows[-1], flush=True)
    results = {**provenance(), "run": config.run, "rounds_done": saved["rounds_done"], "real_steps": store.num_steps,
               "episode_lengths": [len(t) - 1 for t, _ in episodes], "falls": [bool(f) for _, f in episodes],
               "protocol": f"{config.dreams} dreams (random member each step) per falling episode and k, from the real "
                           "state k steps before the fall; foreseen: the dream ends within 25 steps of the real end",
               "rows": rows}
    write_json(ROOT / "benchmarks" / "results" / "dream_foresight.json", results)
    return results


if __name__ == "__main__":
    main(parse_config(Config))
