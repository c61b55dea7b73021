"""How large the world model's gradients are beside the policy's inside WM-assisted PPO.

    python benchmarks/wm_grad_norms.py [--updates=30]

For each env, the recipe's default world model (z = 32, alpha = 0) in PPO with the env's PPO preset,
its gradients clipped jointly with the policy's (the paper draft's one optimizer): before each
clip, the gradient norm of the policy's own parameters, of the encoder, and of the rest of the
world model. The median over the last quarter of the updates' minibatches, and the share of
minibatches the joint clip scaled. Writes benchmarks/results/wm_grad_norms.json.
"""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import torch
from common import ROOT, provenance

from worldkit.config import parse_config
from worldkit.controllers.ppo import PPO, PPOConfig, ppo_preset_for
from worldkit.controllers.wm_ppo import WorldModelAssist
from worldkit.envs import make_vector_env
from worldkit.models import LatentMLPWorldModel


@dataclass
class Config:
    envs: tuple[str, ...] = ("Walker2d-v4", "HalfCheetah-v4", "Hopper-v4")
    updates: int = 30


def measure(env: str, updates: int) -> dict:
    torch.manual_seed(1)
    config = dataclasses.replace(PPOConfig.preset(ppo_preset_for(env)), total_steps=10**7, seed=1)
    envs = make_vector_env(env, config.num_envs)
    obs_dim, action_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    world_model = LatentMLPWorldModel(obs_dim, action_dim, 32)
    ppo = PPO(config, envs, [WorldModelAssist(world_model, alpha=0.0)])
    model_ids, encoder_ids = {id(p) for p in world_model.parameters()}, {id(p) for p in world_model.encoder.parameters()}
    norms, clip = [], ppo._clip_gradients

    def norm(parameters):
        return float(torch.cat([p.grad.flatten() for p in parameters if p.grad is not None]).norm())

    def recording_clip():  # the learner's own clip, watched
        parameters = ppo._parameters
        norms.append((norm([p for p in parameters if id(p) not in model_ids]),
                      norm([p for p in parameters if id(p) in encoder_ids]),
                      norm([p for p in parameters if id(p) in model_ids and id(p) not in encoder_ids]),
                      norm(parameters)))
        clip()

    ppo._clip_gradients = recording_clip
    done = [0]
    ppo.learn(progress=False, callback=lambda _: (done.__setitem__(0, done[0] + 1), done[0] < updates)[1])
    envs.close()
    last = np.array(norms[-len(norms) // 4:])
    policy, encoder, rest, total = np.median(last, axis=0)
    return {"ppo_preset": ppo_preset_for(env), "max_grad_norm": config.max_grad_norm, "updates": updates,
            "median_norm": {"policy": policy, "encoder": encoder, "world_model_rest": rest, "all": total},
            "share_clipped": float((last[:, 3] > config.max_grad_norm).mean())}


def main(config: Config) -> dict:
    results = {**provenance(), "per_env": {env: measure(env, config.updates) for env in config.envs}}
    (ROOT / "benchmarks" / "results" / "wm_grad_norms.json").write_text(json.dumps(results, indent=2) + "\n")
    for env, row in results["per_env"].items():
        print(env, {k: round(v, 2) for k, v in row["median_norm"].items()}, "clipped", row["share_clipped"])
    return results


if __name__ == "__main__":
    main(parse_config(Config))
