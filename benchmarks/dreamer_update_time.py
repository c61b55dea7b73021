"""Seconds per Dreamer update at a recipe's settings, and what a run's updates would take.

One update of ``recipes/dreamer.py`` (at the given ``--preset``; without one, at the run config's
own defaults) is a world-model step on a batch of windows and an actor-critic step imagining
``horizon`` steps from their posterior states. Its cost does not depend on the data, so random batches of walker's shapes
(state: 24 floats; pixels: 64x64x3) stand in. The estimate of a run multiplies the median update
by the updates a run owes, (total_steps - prefill) x train_ratio / (batch x length); collecting
100k env steps adds minutes.

    python benchmarks/dreamer_update_time.py --preset=cpu                    # the CPU preset, one torch thread
    python benchmarks/dreamer_update_time.py --preset=cpu --dreamer.starts=528  # ... imagining from every state
    python benchmarks/dreamer_update_time.py --preset=dreamerv3 --device=cuda
    python benchmarks/dreamer_update_time.py --obs state --size=tiny --sequence_length=32 --train_ratio=256 \
        --dreamer.hidden=128 --precision=bf16 --compile=True --name=cpu_tiny_r256_bf16_compiled

Every flag but --updates, --obs and --name is the recipe's. Writes
benchmarks/results/dreamer_update_time_<name>.json (name: <device>[_bf16] unless given) and
prints a markdown table.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from common import provenance

from worldkit.config import parse_config
from worldkit.controllers.dreamer import DreamerLearner
from worldkit.models.rssm import RSSM
from worldkit.runs.dreamer import DreamerRunConfig as Config
from worldkit.runs.dreamer import (
    compile_loops,
    parse_dreamer_config,
    resolved,
    train_step,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

OBSERVATIONS = {"state": gym.spaces.Box(-np.inf, np.inf, (24,), np.float32),
                "pixels": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)}


def random_batch(space: gym.Space, config: Config) -> dict[str, torch.Tensor]:
    b, t = config.batch_size, config.sequence_length
    obs = (torch.randint(0, 256, (b, t + 1, *space.shape), dtype=torch.uint8) if space.dtype == np.uint8
           else torch.randn(b, t + 1, *space.shape))
    return {"obs": obs, "action": torch.rand(b, t, 6) * 2 - 1, "reward": torch.rand(b, t),
            "terminated": torch.zeros(b, t, dtype=torch.bool), "mask": torch.ones(b, t, dtype=torch.bool)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3, help="timed updates per observation kind")
    parser.add_argument("--obs", nargs="+", default=["state", "pixels"])
    parser.add_argument("--name", default=None, help="results file stem after dreamer_update_time_")
    args, recipe_flags = parser.parse_known_args()
    with_preset = any(flag == "--preset" or flag.startswith("--preset=") for flag in recipe_flags)
    config = resolved((parse_dreamer_config if with_preset else parse_config)(Config, recipe_flags))
    torch.set_num_threads(config.torch_threads)
    args.device, args.precision = config.device, config.precision
    owed = (config.total_steps - config.prefill) * config.train_ratio / (config.batch_size * config.sequence_length)
    load_start, rows = os.getloadavg(), {}
    for kind in args.obs:
        model = RSSM(OBSERVATIONS[kind], gym.spaces.Box(-1, 1, (6,)), size=config.size, latent=config.latent,
                     deter=config.deter, stoch=config.stoch, classes=config.classes, hidden=config.hidden,
                     lr=config.model_lr, decode_fraction=config.decode_fraction).to(args.device)
        learner, optimizer = DreamerLearner(model, config.dreamer), model.configure_optimizers()
        if config.compile:
            compile_loops(model, learner)
        batch = random_batch(OBSERVATIONS[kind], config)
        def autocast() -> torch.autocast:
            return torch.autocast(args.device.split(":")[0], torch.bfloat16, enabled=args.precision == "bf16")
        with autocast():
            train_step(model, optimizer, learner, batch)  # warm-up
        seconds = []
        for _ in range(args.updates):
            start = time.perf_counter()
            with autocast():
                train_step(model, optimizer, learner, batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        rows[kind] = {"seconds_per_update": median, "all": seconds, "run_updates": owed,
                      "run_hours": owed * median / 3600}
        print(f"| {kind} | {args.device}, {args.precision} | {median:.3f} | {owed * median / 3600:.1f} |", flush=True)
    report = {**provenance(), "device": args.device,
              "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
              "cpus": os.cpu_count(), "torch_threads": config.torch_threads, "torch": torch.__version__,
              "size": config.size, "preset": config.preset if with_preset else None, "starts": config.dreamer.starts,
              "precision": args.precision, "compile": config.compile,
              "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(), "results": rows}
    name = args.name or args.device.split(":")[0] + ("_bf16" if args.precision == "bf16" else "")
    path = RESULTS / f"dreamer_update_time_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
