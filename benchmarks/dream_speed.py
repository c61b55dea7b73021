"""How many latent steps per second the dream takes, against the real env's step rate.

In one run, on the recipe's default world model (V: latent 32; M: LSTM 256, 5 components;
untrained weights, since speed does not depend on them, or a trained checkpoint):

- the dream as CMA-ES runs it: a population of linear controllers times rollouts as one batch,
  sampling at temperature 1, at several batch sizes (latent steps = rows x horizon), with
  torch's default number of threads and with one (on a machine other jobs keep busy, two
  OpenMP threads waiting on each other can make small steps many times slower);
- the real env, MiniWorld Sidewalk: bare (random actions) and under a controller reading the
  world model's features (V encodes each frame, M steps its LSTM), as an evaluation worker
  runs it (one torch thread).

The dream's rate is also given in GFLOP/s (every weight matrix of M and C is used once per row and
step) beside a large matrix product's rate at the same thread count: how close the dream runs to
what the core sustains on that arithmetic.

Each rate comes with the CPU time it used, so rates compare per core on a shared machine; each
is the median of ``--repeats`` timed runs after one warm-up.

    python benchmarks/dream_speed.py            # ~1 min on 2 cores
    python benchmarks/dream_speed.py --quick    # ~20 s
    python benchmarks/dream_speed.py --checkpoint runs/world_models/Sidewalk-seed0/checkpoints/world_model

Writes benchmarks/results/dream_speed.json and prints a markdown table.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch
from common import provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.controllers.cmaes import CMAESConfig, LinearController, dream_population
from worldkit.envs import make_env
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel

RESULTS = Path(__file__).resolve().parent / "results" / "dream_speed.json"
GOAL_LATENT_STEPS_PER_S = 100_000
ENV = "miniworld:Sidewalk"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run, repeats: int) -> dict:
    """Median steps per second (and per core-second) of ``run()``, which returns its steps."""
    run()  # warm-up: first calls build kernels and caches
    rates = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        steps = run()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        rates.append({"steps": steps, "seconds": wall, "steps_per_s": steps / wall, "cores": cpu / wall,
                      "steps_per_core_s": steps / cpu})
    return {key: statistics.median(r[key] for r in rates) for key in rates[0]}


def dream_rate(world_model: VAEMDNWorldModel, population: int, rollouts: int, horizon: int, repeats: int) -> dict:
    config = CMAESConfig(population=population, rollouts=rollouts, horizon=horizon, temperature=1.0)
    starts = world_model.initial_state(rollouts)._replace(z=torch.randn(rollouts, world_model.vae.hparams.latent_dim))
    vectors = 0.1 * torch.randn(population, world_model.feature_dim * 3 + 3)
    generator = torch.Generator().manual_seed(0)

    def run() -> int:
        dream_population(world_model, starts, vectors, config, generator)
        return population * rollouts * horizon

    return {"population": population, "rollouts": rollouts, "batch": population * rollouts, "horizon": horizon,
            **timed(run, repeats)}


def flops_per_latent_step(world_model: VAEMDNWorldModel) -> int:
    """Multiply-adds x 2 of one dreamed step of one row: every weight matrix of M (LSTM, mixture head,
    outcome MLP) and the linear controller is used once per step, so the count is their size; the
    elementwise work beside them is small. Divided into a measured rate, it says how close the dream
    runs to the core's arithmetic peak."""
    matrices = sum(p.numel() for name, p in world_model.mdnrnn.named_parameters() if "weight" in name)
    return 2 * (matrices + world_model.feature_dim * 3)


def matmul_rate(repeats: int, size: int = 1024) -> float:
    """GFLOP/s of a large float32 matrix product at the current thread count: what the cores sustain
    on the dream's kind of arithmetic, to compare the dream's rate with."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def run() -> int:
        for _ in range(8):
            a @ b
        return 8

    return timed(run, repeats)["steps_per_s"] * 2 * size**3 / 1e9


def env_rate(steps: int, repeats: int, world_model: VAEMDNWorldModel | None = None) -> dict:
    """Bare Sidewalk steps with random actions, or steps chosen by a controller on [z, h]."""
    env = make_env(ENV, seed=0)
    controller = None if world_model is None else LinearController(world_model.feature_dim, 3).load_vector(
        0.1 * torch.randn(world_model.feature_dim * 3 + 3, generator=torch.Generator().manual_seed(0)))

    @torch.no_grad()
    def run() -> int:
        obs, _ = env.reset(seed=0)
        state = None if world_model is None else world_model.observe(world_model.initial_state(1), None,
                                                                     torch.from_numpy(obs)[None])
        for _ in range(steps):
            if world_model is None:
                action = env.action_space.sample()
            else:
                action = controller.act(world_model.features(state))
            obs, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                obs, _ = env.reset()
                state = None if world_model is None else world_model.observe(world_model.initial_state(1), None,
                                                                             torch.from_numpy(obs)[None])
            elif world_model is not None:
                state = world_model.observe(state, action, torch.from_numpy(obs)[None])
        return steps

    try:
        return timed(run, repeats)
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--checkpoint", help="a VAEMDNWorldModel checkpoint (default: untrained, recipe sizes)")
    args = parser.parse_args()
    repeats, horizon, env_steps = (1, 20, 300) if args.quick else (3, 50, 1000)
    torch.manual_seed(0)
    world_model = (VAEMDNWorldModel.from_pretrained(args.checkpoint) if args.checkpoint
                   else VAEMDNWorldModel.compose(ConvVAE(), MDNRNN())).eval()
    load_start = os.getloadavg()
    default_threads, dream = torch.get_num_threads(), []
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        matmul = matmul_rate(repeats)
        dream += [{"threads": threads, **dream_rate(world_model, population, rollouts, horizon, repeats),
                   "matmul_gflop_per_s": matmul}
                  for population, rollouts in ((32, 16), (64, 16), (64, 32), (128, 64))]  # (64, 16): the recipe's
    real = {"bare": env_rate(env_steps, repeats), "with_world_model": env_rate(env_steps // 2, repeats, world_model)}
    torch.set_num_threads(default_threads)
    flops = flops_per_latent_step(world_model)
    for row in dream:
        row["gflop_per_s"] = row["steps_per_s"] * flops / 1e9
        row["share_of_matmul_rate"] = row["gflop_per_s"] / row["matmul_gflop_per_s"]
    best = max(dream, key=lambda row: row["steps_per_s"])
    prov = provenance()
    results = {
        **prov,
        "machine": {**prov["machine"], "cpus": os.cpu_count(), "torch_threads": default_threads,
                    "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_at_start": load_start, "load_average_at_end": os.getloadavg()},
        "world_model": {"checkpoint": args.checkpoint, "hparams": world_model.hparams,
                        "mdnrnn_parameters": sum(p.numel() for p in world_model.mdnrnn.parameters()),
                        "vae_parameters": sum(p.numel() for p in world_model.vae.parameters()),
                        "flops_per_latent_step": flops},
        "goal_latent_steps_per_s": GOAL_LATENT_STEPS_PER_S,
        "dream": dream,
        "real_env": real,
        "best_dream_over_bare_env": best["steps_per_s"] / real["bare"]["steps_per_s"],
        "goal_met": best["steps_per_s"] >= GOAL_LATENT_STEPS_PER_S,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("| what | torch threads | batch | steps/s | cores | steps per core-s | GFLOP/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in dream:
        print(f"| dream (CMA-ES population x rollouts) | {row['threads']} | {row['batch']} | {row['steps_per_s']:,.0f} "
              f"| {row['cores']:.2f} | {row['steps_per_core_s']:,.0f} | {row['gflop_per_s']:.0f} |")
    for name, row in real.items():
        print(f"| {ENV} {name.replace('_', ' ')} | 1 | 1 | {row['steps_per_s']:,.0f} | {row['cores']:.2f} "
              f"| {row['steps_per_core_s']:,.0f} |")
    print(f"load average {load_start} -> {results['machine']['load_average_at_end']}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
