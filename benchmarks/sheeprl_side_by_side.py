"""worldkit's Dreamer and SheepRL's DreamerV3 side by side on dm-control walker-walk (state), in one run.

    python -m venv --system-site-packages .sheeprl && .sheeprl/bin/pip install "sheeprl[dmc]==0.8.4"
    python benchmarks/sheeprl_side_by_side.py                       # --sheeprl=.sheeprl/bin/sheeprl

SheepRL goes in a virtual environment of its own that sees worldkit's packages (torch,
lightning, gymnasium, dm-control), so nothing of ours is replaced. Both learners get the same
task (walker-walk from its state vector, action repeat 2), the same size preset (DreamerV3's XS:
a 256-unit GRU, 32x32 categorical latent, 256-unit one-layer MLPs for the world model, the actor
and the critic), the same replay ratio, batch (16 sequences of 64 steps), random prefill and
env-step budget, and one thread each (``OMP_NUM_THREADS=1``); everything else is each library's
default. One after the other, each as its own process, timed from start to exit (imports, the
final evaluation episode and SheepRL's start-up included).

Budgets: SheepRL counts policy steps and gradient steps per policy step; worldkit counts env
steps (action repeats included) and replayed steps per env step. With action repeat 2 and
batches of 16 x 64 steps, ``replay_ratio`` gradient steps per policy step is worldkit's
``train_ratio = 512 * replay_ratio``, and both make ``replay_ratio * (steps - prefill) / 2``
updates.

Returns: each library's final test episode (ours deterministic, SheepRL's sampled), and the
mean return of the last ``last_episodes`` training episodes, where both sample their actions.

The defaults are sized for a 2-core CPU (DreamerV3's own budget, 100k env steps at replay ratio
0.5, takes days there, see docs/benchmarks.md). A budget that moves returns off a random
policy's, run at once on the two cores (2.2 h on this 2-core machine):

    python benchmarks/sheeprl_side_by_side.py --precision=bf16 --env_steps=100000 --parallel=True

Each side's result is kept in benchmarks/runs/sheeprl_side_by_side/<name>/ as soon as it ends, and
read back, not rerun, by a later run at the same settings; ``--only=sheeprl`` (or ``worldkit``)
runs one side now, for more seeds on a machine that cannot give a pair its 2 h at once:

    python benchmarks/sheeprl_side_by_side.py --precision=bf16 --env_steps=100000 --seed=1 --only=sheeprl

Writes benchmarks/results/sheeprl_side_by_side{_bf16}{_100k}{_seed1}.json (and a plot of both learning
curves beside it, in docs/img/, when a run has more than one training episode after prefill).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from common import provenance

from worldkit.config import parse_config
from worldkit.plots import learning_curves
from worldkit.runs import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
ACTION_REPEAT, BATCH, LENGTH = 2, 16, 64


@dataclass
class Config:
    sheeprl: str = ".sheeprl/bin/sheeprl"
    """SheepRL's command-line entry point"""
    env_steps: int = 6_000
    """env steps, action repeats included"""
    prefill: int = 2_000
    """env steps of random actions before training"""
    replay_ratio: float = 0.05
    """gradient steps per policy step (SheepRL's definition)"""
    seed: int = 0
    precision: Literal["32", "bf16"] = "32"
    """for both: float32, or updates under bfloat16 autocast (SheepRL: fabric.precision=bf16-mixed)"""
    out_dir: str = "benchmarks/runs/sheeprl_side_by_side"
    parallel: bool = False
    """run both at once, one core each (for long budgets); otherwise one after the other, for clean timing"""
    last_episodes: int = 10
    """training episodes at the end whose mean return is reported"""
    only: Literal["both", "worldkit", "sheeprl"] = "both"
    """run one side now; a side finished earlier at the same settings is read back, not rerun"""

    def __post_init__(self) -> None:
        if not 0 < self.prefill < self.env_steps or self.replay_ratio <= 0:
            raise ValueError("need 0 < prefill < env_steps and replay_ratio > 0")
        if self.prefill // ACTION_REPEAT < LENGTH:
            raise ValueError(f"prefill must hold a whole sequence: at least {LENGTH * ACTION_REPEAT} env steps")


def timed(command: list[str], cwd: Path, log: Path) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    start = time.perf_counter()
    with open(log, "w") as out:
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=environment)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed (exit {result.returncode}); see {log}")
    return seconds


def run_worldkit(config: Config, out: Path) -> dict:
    run_dir = out / "worldkit"
    shutil.rmtree(run_dir, ignore_errors=True)  # the recipe would resume a finished run in no time
    command = [sys.executable, str(ROOT / "recipes" / "dreamer_dmc_walker.py"), f"--run_dir={run_dir}",
               "--preset=dreamerv3", "--device=cpu", f"--total_steps={config.env_steps}", f"--prefill={config.prefill}",
               f"--train_ratio={512 * config.replay_ratio}", f"--action_repeat={ACTION_REPEAT}",
               f"--batch_size={BATCH}", f"--sequence_length={LENGTH}", "--size=XS", "--dreamer.hidden=256",
               "--dreamer.layers=1", f"--eval_every={config.env_steps}", "--eval_episodes=1", f"--seed={config.seed}",
               "--torch_threads=1", "--wandb_mode=disabled", "--progress=False", f"--precision={config.precision}"]
    seconds = timed(command, out, out / "worldkit.log")
    evaluation = read_jsonl(run_dir / "evaluations.jsonl")[-1]
    episodes = [(row["step"], row["train/episode_return"]) for row in read_jsonl(run_dir / "metrics.jsonl")
                if "train/episode_return" in row]
    return {"seconds": seconds, "return": evaluation["mean_return"], "training_episodes": episodes,
            "command": " ".join(command[1:])}


def run_sheeprl(config: Config, out: Path) -> dict:
    if not Path(config.sheeprl).exists():
        raise FileNotFoundError(f"no SheepRL at {config.sheeprl}; install it as this script's docstring says")
    overrides = [
        "exp=dreamer_v3", "env=dmc", "algo=dreamer_v3_XS", "env.wrapper.domain_name=walker",
        "env.wrapper.task_name=walk", "env.wrapper.from_vectors=True", "env.wrapper.from_pixels=False",
        "algo.cnn_keys.encoder=[]", "algo.cnn_keys.decoder=[]", "algo.mlp_keys.encoder=[state]",
        "algo.mlp_keys.decoder=[state]", "env.num_envs=1", f"env.action_repeat={ACTION_REPEAT}",
        "env.capture_video=False", "env.sync_env=True", f"algo.total_steps={config.env_steps // ACTION_REPEAT}",
        f"algo.learning_starts={config.prefill // ACTION_REPEAT}", f"algo.replay_ratio={config.replay_ratio}",
        f"algo.per_rank_batch_size={BATCH}", f"algo.per_rank_sequence_length={LENGTH}",
        "fabric.accelerator=cpu", "fabric.devices=1", "buffer.memmap=False",
        f"fabric.precision={'bf16-mixed' if config.precision == 'bf16' else '32-true'}",
        "checkpoint.every=100000000", "checkpoint.save_last=False", "algo.run_test=True", f"seed={config.seed}",
    ]
    (out / "sheeprl").mkdir(exist_ok=True)
    seconds = timed([str(Path(config.sheeprl).resolve()), *overrides], out / "sheeprl", out / "sheeprl.log")
    log = (out / "sheeprl.log").read_text()
    rewards = re.findall(r"Test - Reward: ([-\d.eE+]+)", log)
    episodes = [(int(step) * ACTION_REPEAT, float(reward))
                for step, reward in re.findall(r"policy_step=(\d+), reward_env_0=([-\d.eE+]+)", log)]
    return {"seconds": seconds, "return": float(rewards[-1]), "training_episodes": episodes,
            "command": "sheeprl " + " ".join(overrides)}


def results_name(config: Config) -> str:
    name = "sheeprl_side_by_side" + "_bf16" * (config.precision == "bf16")
    name += f"_{config.env_steps // 1000}k" * (config.env_steps != Config.env_steps)
    return name + f"_seed{config.seed}" * (config.seed != 0)


def settings(config: Config) -> dict:
    """What a side's result depends on (not how the two were scheduled)."""
    return {k: v for k, v in asdict(config).items() if k not in ("only", "parallel", "last_episodes")}


def finished_sides(config: Config, out: Path) -> dict[str, dict]:
    """Sides already run at these settings (a killed or one-sided run keeps what it finished)."""
    done = {}
    for side in ("worldkit", "sheeprl"):
        path = out / f"{side}.json"
        if path.exists() and (saved := json.loads(path.read_text()))["settings"] == settings(config):
            done[side] = saved["run"]
    return done


def run_side(side: str, config: Config, out: Path) -> dict:
    """One learner's run, saved as soon as it ends so that the other side's failure cannot lose it."""
    run = {"worldkit": run_worldkit, "sheeprl": run_sheeprl}[side](config, out)
    run["load_average_at_end"] = list(os.getloadavg())
    (out / f"{side}.json").write_text(json.dumps({"settings": settings(config), "run": run}, indent=2))
    return run


def main(config: Config) -> dict:
    name = results_name(config)
    out = ROOT / config.out_dir / name
    out.mkdir(parents=True, exist_ok=True)
    updates = config.replay_ratio * (config.env_steps - config.prefill) / ACTION_REPEAT
    runs = finished_sides(config, out)
    todo = [side for side in ("worldkit", "sheeprl") if side not in runs and config.only in ("both", side)]
    for side in runs:
        print(f"{side}: read back from {out / side}.json")
    with ThreadPoolExecutor(2 if config.parallel else 1) as pool:
        futures = {side: pool.submit(run_side, side, config, out) for side in todo}
        runs.update({side: future.result() for side, future in futures.items()})
    if len(runs) < 2:
        print(f"ran {', '.join(todo) or 'nothing'}; the other side runs with --only=<side> at the same settings")
        return {"runs": runs}
    for side, run in runs.items():
        run["env_steps_per_second"] = config.env_steps / run["seconds"]
        last = [value for _, value in run["training_episodes"][-config.last_episodes:]]
        run["last_training_episodes_mean"] = sum(last) / len(last)  # prefill alone ends at least one episode
        print(f"{side}: {run['seconds']:.0f} s, {run['env_steps_per_second']:.1f} env steps/s, "
              f"test return {run['return']:.1f}, last {len(last)} training episodes {run['last_training_episodes_mean']:.1f}")
    ratio = runs["worldkit"]["env_steps_per_second"] / runs["sheeprl"]["env_steps_per_second"]
    result = {
        **provenance(), "config": asdict(config), "updates": updates,
        "schedule": ("at once" if config.parallel else "one after the other") if len(todo) == 2 else "separately",
        "load_average": list(os.getloadavg()),
        "speed_ratio": ratio, "goal_ratio": 1.5, "runs": runs,
    }
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    if all(len(run["training_episodes"]) > 1 for run in runs.values()):
        learning_curves({label: [tuple(zip(*runs[key]["training_episodes"]))] for key, label in
                         (("worldkit", "worldkit Dreamer"), ("sheeprl", "SheepRL DreamerV3"))},
                        ROOT / "docs" / "img" / f"{name}.png", ylabel="training episode return",
                        title=f"walker-walk (state), XS, replay ratio {config.replay_ratio}, {config.precision}")
    print(f"worldkit / SheepRL env steps per second: {ratio:.2f} (goal >= 1.5 at an equal or better return); "
          f"wrote {path}")
    return result


if __name__ == "__main__":
    main(parse_config(Config))
