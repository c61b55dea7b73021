"""Env steps per second of worldkit's PPO against stable-baselines3's PPO, side by side.

Both train on Walker2d-v4 with the same hyperparameters (CleanRL's MuJoCo defaults: 1 env,
2048 steps per rollout, 10 epochs of 32 minibatches, 64-64 tanh actor and critic, observation
and reward normalisation, value clipping) and the same torch thread count, in this one process.
SB3 normalises through ``VecNormalize`` and clips values with ``clip_range_vf=0.2`` to match.
Runs alternate (ours, SB3, ours, ...) and the medians are compared, because other processes may
share the machine; steps per CPU second (this process's CPU time) are recorded beside the
wall-clock rate for the same reason. Each timed span is ``learn()`` alone; building the model
and envs is not counted.

    python benchmarks/ppo_throughput.py                    # 32768 steps each, 3 rounds, 1 thread
    python benchmarks/ppo_throughput.py --steps=20480 --rounds=1 --threads=2

Writes benchmarks/results/ppo_throughput.json and prints a summary. Needs stable-baselines3
(``pip install 'worldkit[dev]'``). Not part of the test suite.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import torch
from common import provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit._optional import require
from worldkit.controllers import PPO, PPOConfig
from worldkit.envs import make_vector_env

RESULTS = Path(__file__).resolve().parent / "results" / "ppo_throughput.json"
GOAL_RATIO = 2.0


def ours(env_id: str, steps: int, threads: int, seed: int) -> dict:
    config = PPOConfig(total_steps=steps, seed=seed, torch_threads=threads)
    envs = make_vector_env(env_id, config.num_envs)
    ppo = PPO(config, envs)
    with Timer() as timer:
        history = ppo.learn(progress=False)
    envs.close()
    return timer.result(ppo.global_step) | {
        "rollout_seconds": sum(m["rollout_time"] for m in history),
        "update_seconds": sum(m["update_time"] for m in history),
    }


def sb3(env_id: str, steps: int, threads: int, seed: int) -> dict:
    sb3_ppo = require("stable_baselines3", extra="dev", package="stable-baselines3")
    vec_env = require("stable_baselines3.common.vec_env", extra="dev", package="stable-baselines3")
    env_util = require("stable_baselines3.common.env_util", extra="dev", package="stable-baselines3")
    torch.set_num_threads(threads)
    config = PPOConfig()
    envs = vec_env.VecNormalize(
        env_util.make_vec_env(env_id, n_envs=config.num_envs, seed=seed),
        gamma=config.gamma, clip_obs=config.obs_clip, clip_reward=config.reward_clip,
    )
    model = sb3_ppo.PPO(
        "MlpPolicy",
        envs,
        learning_rate=lambda progress: config.learning_rate * progress,  # linear annealing, as ours
        n_steps=config.num_steps,
        batch_size=config.minibatch_size,
        n_epochs=config.update_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_coef,
        clip_range_vf=config.clip_coef,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs={"net_arch": {"pi": list(config.hidden_sizes), "vf": list(config.hidden_sizes)},
                       "activation_fn": torch.nn.Tanh},
        device="cpu",
        seed=seed,
    )
    with Timer() as timer:
        model.learn(total_timesteps=steps)
    envs.close()
    return timer.result(model.num_timesteps)


class Timer:
    """Wall-clock and CPU time of a block. Steps per CPU second barely move when other processes
    compete for the cores, so they back up the wall-clock rate on a shared machine."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def result(self, steps: int) -> dict:
        return {"steps": steps, "seconds": self.wall, "cpu_seconds": self.cpu,
                "sps": steps / self.wall, "steps_per_cpu_second": steps / self.cpu}


def machine() -> dict:
    import stable_baselines3

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gym.__version__,
        "worldkit": worldkit.__version__,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Walker2d-v4")
    parser.add_argument("--steps", type=int, default=32_768, help="env steps per run (a multiple of 2048)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each learner")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.steps < 2048 or args.steps % 2048:
        parser.error("--steps must be a positive multiple of 2048 (one rollout)")

    runs = {"worldkit": [], "stable_baselines3": []}
    for round_ in range(args.rounds):
        for name, run in (("worldkit", ours), ("stable_baselines3", sb3)):
            result = run(args.env, args.steps, args.threads, args.seed + round_)
            runs[name].append(result)
            print(f"round {round_ + 1}/{args.rounds} {name:>17}: {result['sps']:7.0f} steps/s, "
                  f"{result['steps_per_cpu_second']:7.0f} steps per CPU second")
    ours_sps, sb3_sps = (statistics.median(r["sps"] for r in runs[name]) for name in runs)
    ours_cpu, sb3_cpu = (statistics.median(r["steps_per_cpu_second"] for r in runs[name]) for name in runs)
    prov = provenance()
    report = {
        **prov,
        "env": args.env,
        "steps_per_run": args.steps,
        "rounds": args.rounds,
        "torch_threads": args.threads,
        "hyperparameters": {k: v for k, v in vars(PPOConfig()).items() if k not in ("total_steps", "seed")},
        "machine": {**prov["machine"], **machine()},
        "worldkit_sps": ours_sps,
        "sb3_sps": sb3_sps,
        "ratio": ours_sps / sb3_sps,
        "worldkit_steps_per_cpu_second": ours_cpu,
        "sb3_steps_per_cpu_second": sb3_cpu,
        "cpu_ratio": ours_cpu / sb3_cpu,
        "load_average": os.getloadavg(),
        "goal_ratio": GOAL_RATIO,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"worldkit {ours_sps:.0f} steps/s, SB3 {sb3_sps:.0f} steps/s: {report['ratio']:.2f}x "
          f"({report['cpu_ratio']:.2f}x per CPU second; goal {GOAL_RATIO:.0f}x) on {args.env}, "
          f"{args.threads} thread(s); wrote {args.out}")


if __name__ == "__main__":
    main()
