"""Returns of PPO, world-model-assisted PPO and PPO+ICM over seeds, from the recipe's own logs.

    python benchmarks/wm_ppo_returns.py                        # run what is missing, then report
    python benchmarks/wm_ppo_returns.py --report_only=True     # report from the runs on disk

Each (env, method, seed) is one `recipes/wm_ppo_walker.py` run in `<run_dir>`; finished runs
(with a summary.json) are skipped and killed ones resume, so the grid can be grown over several
sittings. Writes benchmarks/results/wm_ppo_returns.json (``wm_ppo_returns_<folder>.json`` for
another ``--run_dir``), one learning-curve PNG per env, and prints the markdown table that
docs/benchmarks.md carries.
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import provenance

from worldkit.config import parse_config
from worldkit.files import read_jsonl
from worldkit.plots import learning_curves

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    envs: tuple[str, ...] = ("Walker2d-v4", "HalfCheetah-v4")
    methods: tuple[str, ...] = ("ppo", "wm_ppo", "ppo_icm")
    seeds: tuple[int, ...] = (1, 2, 3)
    total_steps: int = 1_000_000
    jobs: int = 2
    """runs at once (each uses one core)"""
    run_dir: str = "benchmarks/runs/wm_ppo"
    extra: tuple[str, ...] = ()
    """more recipe flags for every run, e.g. --extra=--policy_input=z_and_s"""
    report_only: bool = False
    threshold: float = 4000.0
    """report the env steps at which the training return first reaches this"""


def run_grid(config: Config) -> None:
    # seed by seed, so that a grid stopped part-way has the same seeds of every env and method
    pending = [(env, method, seed) for seed in config.seeds for env in config.envs for method in config.methods
               if not (_run_path(config, env, method, seed) / "summary.json").exists()]
    running: list[subprocess.Popen] = []
    while pending or running:
        running = [p for p in running if p.poll() is None]
        while pending and len(running) < config.jobs:
            env, method, seed = pending.pop(0)
            log = open(_run_path(config, env, method, seed).with_suffix(".log"), "a")
            command = [sys.executable, str(ROOT / "recipes" / "wm_ppo_walker.py"), f"--env={env}",
                       f"--method={method}", "--seeds", str(seed), f"--total_steps={config.total_steps}",
                       f"--run_dir={config.run_dir}", "--progress=False", "--wandb_mode=disabled", *config.extra]
            print("start", " ".join(command[1:]), flush=True)
            running.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        time.sleep(5)


def report(config: Config) -> dict:
    results: dict = {**provenance(), "total_steps": config.total_steps, "runs": {}}
    for env in config.envs:
        curves = {}
        for method in config.methods:
            finished = []
            for seed in config.seeds:
                path = _run_path(config, env, method, seed)
                if not (path / "summary.json").exists():
                    continue
                rows = read_jsonl(path / "metrics.jsonl")
                train = [(r["step"], r["episodic_return"]) for r in rows if "episodic_return" in r]
                evaluations = read_jsonl(path / "evaluations.jsonl")
                reached = next((step for step, value in train if value >= config.threshold), None)
                finished.append({"seed": seed, "train": train, "final_train": train[-1][1],
                                 "final_eval": evaluations[-1]["mean_return"], "steps_to_threshold": reached,
                                 "train_seconds": sum(r.get("rollout_time", 0.0) + r.get("update_time", 0.0)
                                                      for r in rows)})
            if not finished:
                continue
            finals = np.array([f["final_train"] for f in finished])
            evals = np.array([f["final_eval"] for f in finished])
            results["runs"][f"{env}/{method}"] = {
                "seeds": [f["seed"] for f in finished],
                "final_train_mean": float(finals.mean()), "final_train_std": float(finals.std()),
                "final_eval_mean": float(evals.mean()), "final_eval_std": float(evals.std()),
                "final_train_per_seed": finals.tolist(), "final_eval_per_seed": evals.tolist(),
                "steps_to_threshold": [f["steps_to_threshold"] for f in finished],
                "train_seconds": [round(f["train_seconds"]) for f in finished],
            }
            curves[method] = [tuple(zip(*f["train"])) for f in finished]
        if curves:
            picture = learning_curves(curves, ROOT / "benchmarks" / "results" / f"{_name(config)}_{env}.png",
                                      title=f"{env}: training return (last 100 episodes), mean and 95% CI over seeds")
            (ROOT / "docs" / "img" / picture.name).write_bytes(picture.read_bytes())  # shown in docs/benchmarks.md
    out = ROOT / "benchmarks" / "results" / f"{_name(config)}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"| env | method | seeds | train return, last 100 episodes | deterministic eval | steps to {config.threshold:.0f} |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for key, r in results["runs"].items():
        env, method = key.split("/")
        steps = ", ".join("never" if s is None else f"{s / 1e6:.2f}M" for s in r["steps_to_threshold"])
        print(f"| {env} | {method} | {len(r['seeds'])} | {r['final_train_mean']:,.0f} ± {r['final_train_std']:,.0f} "
              f"| {r['final_eval_mean']:,.0f} ± {r['final_eval_std']:,.0f} | {steps} |")
    return results


def _name(config: Config) -> str:
    """Results of the default grid are wm_ppo_returns.*; another run_dir's get its name added, so
    a variant's report never overwrites the main one."""
    folder = Path(config.run_dir).name
    return "wm_ppo_returns" if folder == "wm_ppo" else f"wm_ppo_returns_{folder}"


def _run_path(config: Config, env: str, method: str, seed: int) -> Path:
    return ROOT / config.run_dir / f"{env}-{method}-seed{seed}"


if __name__ == "__main__":
    cfg = parse_config(Config)
    (ROOT / cfg.run_dir).mkdir(parents=True, exist_ok=True)
    if not cfg.report_only:
        run_grid(cfg)
    report(cfg)
