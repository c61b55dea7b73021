"""Latent steps per second at batch 1,024 for every world model worldkit ships, and what one
Dreamer update costs at the recipe's default size.

For each model (untrained: speed does not depend on the weights), the median of ``--repeats``
timed runs after a warm-up, one torch thread (the machine is shared; see docs/benchmarks.md):

- ``imagine``: ``horizon`` calls of ``WorldModel.imagine`` on 1,024 states with random actions,
  no gradients (what CMA-ES and evaluation dreams cost);
- ``dream_env``: the same through :class:`DreamEnv` with 1,024 envs (numpy in and out, sampled
  ends and resets: what PPO in the dream sees);
- ``dreamer_update``: one actor and critic update of Dreamer's actor-critic from 1,024 start
  states over a 15-step imagination, gradients through the dynamics (RSSM and MLP; the
  VAE+MDN-RNN's actions are discrete, so its update is REINFORCE, without that backward pass).

    python benchmarks/imagination_throughput.py           # ~3 min on 2 busy cores
    python benchmarks/imagination_throughput.py --quick
    python benchmarks/imagination_throughput.py --device=cuda    # writes imagination_throughput_cuda.json

Writes benchmarks/results/imagination_throughput.json and prints a markdown table.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from common import provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.controllers.dreamer import DreamerConfig, DreamerLearner
from worldkit.dream.env import DreamEnv
from worldkit.models import RSSM, LatentMLPWorldModel
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import select_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel

RESULTS = Path(__file__).resolve().parent / "results" / "imagination_throughput.json"
BATCH = 1024
WALKER_OBS = gym.spaces.Box(-np.inf, np.inf, (24,), np.float32)  # dm-control walker-walk, state
WALKER_ACTIONS = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)


def world_models(device: str) -> dict:
    """Each model at the size its recipe uses, with a batch of 1,024 start states."""
    torch.manual_seed(0)
    models = {
        "RSSM S (dreamer_dmc_walker default)": RSSM(WALKER_OBS, WALKER_ACTIONS, size="S"),
        "RSSM XS": RSSM(WALKER_OBS, WALKER_ACTIONS, size="XS"),
        "RSSM v1 (Gaussian)": RSSM(WALKER_OBS, WALKER_ACTIONS, size="v1"),
        "LatentMLP (wm_ppo, heads)": LatentMLPWorldModel(24, 6, heads=True),
        "VAE + MDN-RNN (miniworld_cmaes default)": VAEMDNWorldModel.compose(ConvVAE(), MDNRNN()),
    }
    out = {}
    for name, model in models.items():
        model.to(device).eval()
        if isinstance(model, VAEMDNWorldModel):
            starts = model.initial_state(BATCH)._replace(z=torch.randn(BATCH, model.vae.hparams.latent_dim, device=device))
        else:
            with torch.no_grad():
                starts = model.observe(model.initial_state(BATCH), None, torch.randn(BATCH, 24, device=device))
        out[name] = (model, starts)
    return out


def random_actions(space: gym.Space, n: int, device: torch.device) -> torch.Tensor:
    if isinstance(space, gym.spaces.Discrete):
        return torch.randint(0, int(space.n), (n,), device=device)
    return torch.rand(n, space.shape[0], device=device) * 2 - 1


def timed(run, repeats: int) -> dict:
    run()  # warm-up
    rows = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append({"seconds": seconds, "steps_per_s": steps / seconds})
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def measure(model, starts, horizon: int, repeats: int, update: bool) -> dict:
    device = starts[0].device
    generator = torch.Generator(device).manual_seed(0)

    @torch.no_grad()
    def imagine() -> int:
        state = starts
        for _ in range(horizon):
            state, _, _ = model.imagine(state, random_actions(model.action_space, BATCH, device), generator=generator)
        return BATCH * horizon

    dreams = DreamEnv(model, starts, BATCH, horizon=1000)
    dreams.reset(seed=0)

    def dream_env() -> int:
        for _ in range(horizon):
            dreams.step(random_actions(model.action_space, BATCH, device).cpu().numpy())
        return BATCH * horizon

    row = {"imagine": timed(imagine, repeats), "dream_env": timed(dream_env, repeats)}
    if update:
        learner = DreamerLearner(model, DreamerConfig(horizon=15, hidden=512, layers=2))

        def dreamer_update() -> int:
            learner.train_step(select_state(starts, torch.arange(BATCH)))
            return BATCH * 15

        row["dreamer_update"] = timed(dreamer_update, max(1, repeats // 2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter horizon, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    horizon, repeats = (5, 1) if args.quick else (15, args.repeats)
    load_start = os.getloadavg()
    results = {name: {"parameters": sum(p.numel() for p in model.parameters()), "feature_dim": model.feature_dim,
                      **measure(model, starts, horizon, repeats, update=True)}
               for name, (model, starts) in world_models(args.device).items()}
    results_file = RESULTS if args.device == "cpu" else RESULTS.with_name(f"{RESULTS.stem}_{args.device}.json")
    prov = provenance()
    report = {
        **prov,
        "machine": {**prov["machine"], "cpus": os.cpu_count(), "torch_threads": 1, "platform": platform.platform(),
                    "device": args.device,
                    "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                    "torch": torch.__version__, "load_average_at_start": load_start,
                    "load_average_at_end": os.getloadavg()},
        "batch": BATCH, "horizon": horizon, "models": results,
    }
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2) + "\n")
    print("| world model | parameters | imagine, latent steps/s | DreamEnv, steps/s | Dreamer update, s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in results.items():
        update = row.get("dreamer_update", {}).get("seconds")
        print(f"| {name} | {row['parameters']:,} | {row['imagine']['steps_per_s']:,.0f} | "
              f"{row['dream_env']['steps_per_s']:,.0f} | {'' if update is None else f'{update:.2f}'} |")
    print(f"load average {load_start} -> {report['machine']['load_average_at_end']}; wrote {results_file}")


if __name__ == "__main__":
    main()
