"""The dream-to-real gap across the dream's temperature tau (World Models' Table 2, on Sidewalk).

For each tau, CMA-ES trains a fresh controller in the dream of one trained world model (V and M
of a finished ``recipes/miniworld_cmaes.py`` run, its last round's M), then the controller is
scored twice: by the dream itself (mean expected return of 1,024 dreams from real first frames,
at the same tau) and in the real env (100 seeded episodes). A dream the controller can exploit
shows a high dream return and a low real one.

    python benchmarks/dream_temperature.py --run runs/world_models/Sidewalk-seed0
    python benchmarks/dream_temperature.py --run ... --temperatures 0.5 1.0 1.5 --episodes 20

Resumable: each finished tau is kept in the results file and skipped on the next start.
Writes benchmarks/results/dream_temperature.json and prints a markdown table.
"""

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch
from common import provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.controllers.cmaes import CMAESConfig, evaluate_in_env, train_in_dream
from worldkit.dream.imagine import imagine
from worldkit.dream.latents import LatentEpisodes
from worldkit.models.protocol import select_state
from worldkit.models.vae_mdn import VAEMDNWorldModel

RESULTS = Path(__file__).resolve().parent / "results" / "dream_temperature.json"


def last_stage(run: Path) -> tuple[Path, LatentEpisodes]:
    """The run's last round folder (or the run itself) and every episode its M trained on."""
    rounds = sorted((p.parents[1] for p in run.glob("round*/checkpoints/world_model")), key=lambda p: int(p.name[5:]))
    stages = [run, *rounds]
    episodes = [episode for stage in stages for episode in LatentEpisodes.load(stage / "latents.npz").episodes]
    return stages[-1], LatentEpisodes(episodes, LatentEpisodes.load(run / "latents.npz").env_spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished recipes/miniworld_cmaes.py run folder")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 1.0, 1.15, 1.5])
    parser.add_argument("--episodes", type=int, default=100, help="real episodes per controller")
    parser.add_argument("--generations", type=int, default=CMAESConfig.generations)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = Path(args.run)
    if not (run / "checkpoints" / "world_model").exists():
        parser.error(f"{run} holds no trained world model (checkpoints/world_model): run the recipe first")
    torch.set_num_threads(1)
    stage, latents = last_stage(run)
    world_model = VAEMDNWorldModel.from_pretrained(stage / "checkpoints" / "world_model")
    env = world_model.env_spec
    starts = world_model.initial_state(len(latents))._replace(z=latents.first_latents())

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    same_run = previous.get("world_model") == str(stage) and previous.get("episodes") == args.episodes
    rows = {row["temperature"]: row for row in previous.get("rows", [])} if same_run else {}
    prov = provenance()
    results = {**prov, "world_model": str(stage), "env": env, "episodes": args.episodes,
               "generations": args.generations,
               "machine": {**prov["machine"], "cpus": os.cpu_count(), "platform": platform.platform(),
                           "torch": torch.__version__}}
    for temperature in args.temperatures:
        if temperature in rows:
            continue
        began = time.perf_counter()
        config = dataclasses.replace(CMAESConfig(), temperature=temperature, generations=args.generations,
                                     seed=args.seed)
        controller = train_in_dream(world_model, starts, config, progress=True).controller
        generator = torch.Generator().manual_seed(args.seed)
        dream_starts = select_state(starts, torch.randint(len(latents), (1024,), generator=generator))
        dream = imagine(world_model, dream_starts, controller.act, config.horizon, temperature=temperature,
                                generator=generator)
        real = evaluate_in_env(world_model, controller, env, args.episodes, seed=10_000 + args.seed,
                               workers=args.workers)
        rows[temperature] = {"temperature": temperature, "dream_return": dream.returns().mean().item(),
                             "dream_steps": dream.expected_length().mean().item(),
                             "real_return": real["mean_return"], "real_success_rate": real["success_rate"],
                             "real_steps": real["mean_length"], "seconds": round(time.perf_counter() - began, 1)}
        results["rows"] = sorted(rows.values(), key=lambda row: row["temperature"])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("| tau | dream return | real return | real success | dream steps | real steps |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(rows.values(), key=lambda row: row["temperature"]):
        print(f"| {row['temperature']} | {row['dream_return']:.3f} | {row['real_return']:.3f} "
              f"| {row['real_success_rate']:.0%} | {row['dream_steps']:.0f} | {row['real_steps']:.0f} |")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
