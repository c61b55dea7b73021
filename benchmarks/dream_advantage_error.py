"""How well do MBPPO's one-step dreams tell good actions from bad? Dreamed against true advantages.

A one-step dream of MBPPO gives PPO the advantage ``r + gamma * (1 - done) * V(s') - V(s)`` of a
policy action ``a`` at a real state ``s``, with ``r``, ``s'`` and ``done`` predicted by the
dynamics ensemble. Here the same advantage is also computed with the truth: the MuJoCo state
behind ``s`` is restored and ``a`` really taken. Training MBPPO (one-step dreams, no curiosity,
the best Hopper setting) and stopping at milestones, for each of ``states`` states visited by
the current policy, ``actions`` policy actions are scored both ways. What matters to the policy
gradient is how the advantage varies between actions at one state, so both are centred per
state before they are compared:

- ``correlation``: of centred dreamed and true advantages (1: dreams rank actions as the env does);
- ``spread_ratio``: std of the centred dreamed advantages over that of the true ones;
- ``bias``: the mean of dreamed minus true advantage (uncentred), in PPO's scaled-reward units;

each for a randomly drawn member per sample (as MBPPO dreams) and for the members' mean.

    python benchmarks/dream_advantage_error.py                       # Hopper-v4, seed 1
    python benchmarks/dream_advantage_error.py --envs Hopper-v4 Walker2d-v4 --seeds 1 2

Writes benchmarks/results/dream_advantage_error.json and prints a markdown table.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from common import provenance

from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.mbppo import AdaptiveImagination, ImaginationConfig
from worldkit.envs import make_vector_env, parse_spec
from worldkit.normalize import EPSILON

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Config:
    envs: tuple[str, ...] = ("Hopper-v4",)
    seeds: tuple[int, ...] = (1,)
    milestones: tuple[int, ...] = (50_000, 150_000, 300_000)
    """real env steps of MBPPO training at which dreams are scored"""
    states: int = 200
    actions: int = 8
    """policy actions scored at each state"""
    name: str = "dream_advantage_error"

    def __post_init__(self) -> None:
        if self.states < 2 or self.actions < 2:
            raise ValueError("need at least 2 states and 2 actions per state")


def visited_states(env: gym.Env, agent, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(obs, qpos, qvel) of ``count`` states the current stochastic policy visits, one every 5 steps."""
    found, (obs, _), step = [], env.reset(seed=seed), 0
    while len(found) < count:
        if step % 5 == 0:
            found.append((obs.copy(), env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()))
        with torch.no_grad():
            action = agent.act(torch.as_tensor(obs, dtype=torch.float32)[None], deterministic=False)[0].numpy()
        obs, _, terminated, truncated, _ = env.step(action)
        step += 1
        if terminated or truncated:
            obs, _ = env.reset()
    return found


@torch.no_grad()
def score(env: gym.Env, ppo: PPO, hook: AdaptiveImagination, config: Config, seed: int) -> dict[str, float]:
    agent, gamma = ppo.agent, ppo.config.gamma
    scale = math.sqrt(float(agent.return_rms.var) + EPSILON) if agent.return_rms is not None else 1.0
    states = visited_states(env, agent, config.states, seed)
    obs = torch.as_tensor(np.stack([s[0] for s in states]), dtype=torch.float32)
    policy_out = agent.policy(agent.normalize(obs)).repeat_interleave(config.actions, 0)
    actions = agent.to_env(agent.sample(policy_out, agent.noise(policy_out.shape[:-1])))
    starts = obs.repeat_interleave(config.actions, 0)
    value = agent.value(agent.normalize(starts))

    true_next, true_reward, true_done = [], [], []
    repeated = [(qpos, qvel) for _, qpos, qvel in states for _ in range(config.actions)]
    for (qpos, qvel), action in zip(repeated, actions.numpy()):
        env.reset()
        env.unwrapped.set_state(qpos, qvel)
        next_obs, reward, terminated, _, _ = env.step(action)
        true_next.append(next_obs), true_reward.append(reward), true_done.append(float(terminated))

    def advantage(next_obs, reward, done):
        next_value = agent.value(agent.normalize(torch.as_tensor(np.asarray(next_obs), dtype=torch.float32)))
        reward, done = torch.as_tensor(np.asarray(reward), dtype=torch.float32), torch.as_tensor(np.asarray(done))
        return reward / scale + gamma * (1 - done.float()) * next_value - value

    true = advantage(true_next, true_reward, true_done)
    members_next, members_reward, members_done = hook.model.predict(starts, actions)
    pick = torch.randint(hook.model.ensemble_size, (len(starts),))
    rows = torch.arange(len(starts))
    dreams = {
        "member": advantage(members_next[pick, rows], members_reward[pick, rows], members_done[pick, rows] > 0.5),
        "mean": advantage(members_next.mean(0), members_reward.mean(0), members_done.mean(0) > 0.5),
    }

    def centred(advantages: torch.Tensor) -> torch.Tensor:
        per_state = advantages.view(-1, config.actions)
        return (per_state - per_state.mean(1, keepdim=True)).flatten()

    result = {"true_centred_std": float(centred(true).std()), "true_advantage_std": float(true.std())}
    for kind, dreamed in dreams.items():
        result[f"{kind}/correlation"] = float(torch.corrcoef(torch.stack([centred(dreamed), centred(true)]))[0, 1])
        result[f"{kind}/spread_ratio"] = float(centred(dreamed).std() / centred(true).std())
        result[f"{kind}/bias"] = float((dreamed - true).mean())
    return result


def run(env_id: str, seed: int, config: Config) -> list[dict]:
    spec = parse_spec(env_id)
    envs = make_vector_env(spec, 1)
    hook = AdaptiveImagination(ImaginationConfig(curiosity="none", horizon=1, min_rollouts=50, max_rollouts=500,
                                                 seed=seed), envs.single_observation_space, envs.single_action_space)
    ppo = PPO(PPOConfig(total_steps=max(config.milestones), seed=seed), hook.record(envs), [hook])
    probe_env, rows, pending = gym.make(env_id), [], sorted(config.milestones)

    def at_update(metrics: dict) -> None:
        while pending and ppo.global_step >= 0.99 * pending[0]:
            row = {"env": env_id, "seed": seed, "step": ppo.global_step, "train_return": metrics["episodic_return"],
                   **score(probe_env, ppo, hook, config, seed=10_000 + len(rows))}
            print(json.dumps(row), flush=True)
            rows.append(row)
            pending.pop(0)

    ppo.learn(progress=True, callback=at_update)
    return rows


def main(config: Config) -> None:
    torch.manual_seed(0)
    rows = [row for env_id in config.envs for seed in config.seeds for row in run(env_id, seed, config)]
    report = {**provenance(), "load_average": os.getloadavg(), "states": config.states, "actions": config.actions,
              "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{config.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| env | seed | real steps | correlation (member / mean) | spread ratio (member / mean) "
          "| bias (member / mean) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['env']} | {r['seed']} | {r['step']:,} "
              f"| {r['member/correlation']:.2f} / {r['mean/correlation']:.2f} "
              f"| {r['member/spread_ratio']:.2f} / {r['mean/spread_ratio']:.2f} "
              f"| {r['member/bias']:+.3f} / {r['mean/bias']:+.3f} |")


if __name__ == "__main__":
    main(parse_config(Config))
