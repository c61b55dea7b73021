"""Model-based PPO vs our PPO, with ablations: returns at 100k and 300k real steps, and time per real step.

    python benchmarks/mbppo_returns.py                                   # the whole grid, one run at a time
    python benchmarks/mbppo_returns.py --workers=16                      # a bigger machine: 16 runs at once
    python benchmarks/mbppo_returns.py --envs Hopper-v4 --variants ppo mbppo --seeds 1
    python benchmarks/mbppo_returns.py --report_only=True                # report from the runs on disk
    python benchmarks/mbppo_returns.py --variants ppo no_curiosity_h1 --seeds 1 2 3 4 5 6 7 8 9 --name=mbppo_horizon

Each (env, variant, seed) is one ``recipes/mbppo_hopper.py`` process (one torch thread) writing
to ``<run_dir>/<variant>/``; finished runs are skipped and killed ones resume, so the grid can be
grown over several sittings and machines. Variants: ``ppo`` (the baseline: the same PPO, no
hook), ``mbppo`` (everything on), and one ablation per part: ``no_adaptive_rollouts`` (always
``max_rollouts``), ``no_confidence_weighting`` (imagined samples weigh ``imagination_discount``),
``no_curiosity``. Writes benchmarks/results/mbppo_returns.json and one learning-curve PNG per env
(also copied to docs/img), and prints the tables docs/benchmarks.md carries.
"""

import json
import os
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
VARIANTS = {
    "ppo": ["--method=ppo"],
    "mbppo": ["--method=mbppo"],
    "no_adaptive_rollouts": ["--method=mbppo", "--mbppo.adaptive_rollouts=False"],
    "no_confidence_weighting": ["--method=mbppo", "--mbppo.confidence_weighting=False"],
    "no_curiosity": ["--method=mbppo", "--mbppo.curiosity=none"],
    # not an ablation: the best variant on Walker2d, with four times the seed's imagination budget
    "no_curiosity_4x_rollouts": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.min_rollouts=40",
                                 "--mbppo.max_rollouts=400"],
    # is it the horizon that hurts? one-step dreams, at the seed's imagined budget and at 4x it
    "mbppo_h1": ["--method=mbppo", "--mbppo.horizon=1", "--mbppo.min_rollouts=50", "--mbppo.max_rollouts=500"],
    "no_curiosity_h1": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1", "--mbppo.min_rollouts=50",
                        "--mbppo.max_rollouts=500"],
    "no_curiosity_h3": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=3", "--mbppo.min_rollouts=17",
                        "--mbppo.max_rollouts=167"],
    "no_curiosity_h1_2x": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                           "--mbppo.min_rollouts=100", "--mbppo.max_rollouts=1000"],
    "no_curiosity_h1_4x": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                           "--mbppo.min_rollouts=200", "--mbppo.max_rollouts=2000"],
    # fewer one-step dreams, and one-step dreams from every state of the latest rollout (not its last quarter)
    "no_curiosity_h1_half": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                             "--mbppo.min_rollouts=25", "--mbppo.max_rollouts=250"],
    "no_curiosity_h1_all_starts": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                                   "--mbppo.min_rollouts=50", "--mbppo.max_rollouts=500", "--mbppo.start_fraction=1.0"],
    # dreams from the members' mean rather than a random member (benchmarks/dream_advantage_error.py)
    "no_curiosity_h1_mean": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                             "--mbppo.min_rollouts=50", "--mbppo.max_rollouts=500", "--mbppo.temperature=0"],
    "no_curiosity_mean": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.temperature=0"],
    # a quarter of the real steps per update (512), so dreams are about half of each batch; PPO alike, as control
    "ppo_512": ["--method=ppo", "--ppo.num_steps=512", "--ppo.num_minibatches=8"],
    "no_curiosity_h1_512": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                            "--mbppo.min_rollouts=50", "--mbppo.max_rollouts=500",
                            "--ppo.num_steps=512", "--ppo.num_minibatches=8"],
    # a control: one-step dreams whose outcomes are shuffled across rollouts
    "no_curiosity_h1_shuffled": ["--method=mbppo", "--mbppo.curiosity=none", "--mbppo.horizon=1",
                                 "--mbppo.min_rollouts=50", "--mbppo.max_rollouts=500", "--mbppo.shuffle_dreams=True"],
}
# Where an MBPPO iteration's time goes, from the recipe's per-update metrics.
TIME_PARTS = {"model training": "mbppo/model_time", "imagination": "mbppo/imagination_time",
              "curiosity training": "mbppo/curiosity_time"}


@dataclass
class Config:
    envs: tuple[str, ...] = ("Hopper-v4", "Walker2d-v4")
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: tuple[int, ...] = (1, 2, 3)
    total_steps: int = 300_000
    """real env steps per run"""
    milestones: tuple[int, ...] = (100_000, 300_000)
    """real env steps at which returns are compared"""
    workers: int = 1
    """runs at once, each a process with one torch thread (give each a core)"""
    run_dir: str = "benchmarks/runs/mbppo"
    extra: tuple[str, ...] = ()
    """more recipe flags for every run, e.g. --extra=--mbppo.ensemble_size=7"""
    report_only: bool = False
    name: str = "mbppo_returns"
    """stem of the results: benchmarks/results/<name>.json and <name>_<env>.png"""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if not self.seeds or not self.envs:
            raise ValueError("give at least one env and one seed")
        if max(self.milestones) > self.total_steps:
            raise ValueError(f"milestones {self.milestones} go beyond total_steps {self.total_steps}")


def _run_path(config: Config, env: str, variant: str, seed: int) -> Path:
    method = "ppo" if "--method=ppo" in VARIANTS[variant] else "mbppo"
    return ROOT / config.run_dir / variant / f"{env}-{method}-seed{seed}"


def _finished(path: Path, total_steps: int) -> bool:
    """A run that trained to ``total_steps`` (rounded down to whole rollouts) and wrote its summary."""
    summary = path / "summary.json"
    if not summary.exists():
        return False
    summary = json.loads(summary.read_text())
    return summary.get("total_steps", summary["steps"] + 2048) >= total_steps


def run_grid(config: Config) -> None:
    """Start every missing run, ``workers`` at a time; each logs to ``<run folder>.log``."""
    pending = [(env, variant, seed) for env in config.envs for seed in config.seeds for variant in config.variants
               if not _finished(_run_path(config, env, variant, seed), config.total_steps)]
    running: list[subprocess.Popen] = []
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    while pending or running:
        running = [p for p in running if p.poll() is None]
        while pending and len(running) < config.workers:
            env, variant, seed = pending.pop(0)
            path = _run_path(config, env, variant, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, str(ROOT / "recipes" / "mbppo_hopper.py"), f"--env={env}", "--seeds", str(seed),
                       f"--total_steps={config.total_steps}", f"--run_dir={path.parent}", "--progress=False",
                       "--wandb_mode=disabled", *VARIANTS[variant], *config.extra]
            print("start", env, variant, seed, flush=True)
            log = open(path.with_suffix(".log"), "a")
            running.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=environment))
        time.sleep(2)


def _at(rows: list[tuple[int, float]], step: int) -> float | None:
    """The first value logged at or after ``step`` less 1% (a 300k-step run stops at 299,008, the
    last whole 2,048-step rollout); None if the run has not got there."""
    return next((value for s, value in rows if s >= 0.99 * step), None)


def final_evaluation(path: Path, env: str, seed: int, episodes: int = 5) -> float | None:
    """Deterministic return of the run's final policy, as the recipe evaluates (seed 10,000 + seed).

    Runs made before the recipe evaluated after its last update have it only in the final
    policy checkpoint; it is evaluated once and kept in ``final_evaluation.json``.
    """
    summary = path / "summary.json"
    if not summary.exists():
        return None
    final_step = json.loads(summary.read_text())["steps"]
    evals = read_jsonl(path / "evaluations.jsonl")
    if evals and evals[-1]["step"] == final_step:
        return evals[-1]["mean_return"]
    cache = path / "final_evaluation.json"
    if not cache.exists():
        from worldkit.controllers import PPOAgent, evaluate

        agent = PPOAgent.from_pretrained(path / "checkpoints" / "policy")
        result = evaluate(agent, env, episodes, seed=10_000 + seed)
        cache.write_text(json.dumps({"step": final_step, "mean_return": result["mean_return"],
                                     "std_return": result["std_return"]}))
    return json.loads(cache.read_text())["mean_return"]


def summarise_run(path: Path, milestones: tuple[int, ...], env: str, seed: int, total_steps: int) -> dict | None:
    """Returns at each milestone and seconds per real step, by part, from one run's logs."""
    rows = read_jsonl(path / "metrics.jsonl")
    if not rows:
        return None
    train = [(r["step"], r["episodic_return"]) for r in rows if "episodic_return" in r]
    evals = [(r["step"], r["mean_return"]) for r in read_jsonl(path / "evaluations.jsonl")]
    final = final_evaluation(path, env, seed) if _finished(path, total_steps) else None
    updates = [r for r in rows if "rollout_time" in r]
    steps = updates[-1]["step"] if updates else 0
    seconds = {part: sum(r.get(key, 0.0) for r in updates) for part, key in TIME_PARTS.items()}
    total = sum(r["rollout_time"] + r["update_time"] for r in updates)
    seconds["ppo update"] = sum(r["update_time"] for r in updates)
    seconds["env steps and policy"] = total - sum(seconds.values())
    return {
        "steps": steps, "train": train,
        "train_at": {str(m): _at(train, m) for m in milestones},
        "eval_at": {str(m): final if m == total_steps else _at(evals, m) for m in milestones},
        "seconds_per_real_step": total / steps if steps else None,
        "seconds_per_real_step_by_part": {part: value / steps for part, value in seconds.items()} if steps else None,
        "imagined_steps_per_real_step": (sum(r.get("extra_samples", 0) for r in updates) / steps) if steps else None,
    }


def _mean_std(values: list[float | None]) -> dict:
    values = [v for v in values if v is not None]
    return {"mean": float(np.mean(values)) if values else None, "std": float(np.std(values)) if values else None,
            "n": len(values), "per_seed": values}


def report(config: Config) -> dict:
    results: dict = {**provenance(), "total_steps": config.total_steps,
                     "milestones": list(config.milestones), "load_average": list(os.getloadavg()), "runs": {}}
    for env in config.envs:
        curves = {}
        for variant in config.variants:
            runs = {seed: summarise_run(_run_path(config, env, variant, seed), config.milestones, env, seed,
                                        config.total_steps) for seed in config.seeds}
            runs = {seed: run for seed, run in runs.items() if run is not None}
            if not runs:
                continue
            entry = {"seeds": list(runs), "steps": {s: r["steps"] for s, r in runs.items()}}
            for milestone in map(str, config.milestones):
                entry[f"train_{milestone}"] = _mean_std([r["train_at"][milestone] for r in runs.values()])
                entry[f"eval_{milestone}"] = _mean_std([r["eval_at"][milestone] for r in runs.values()])
            entry["seconds_per_real_step"] = _mean_std([r["seconds_per_real_step"] for r in runs.values()])
            parts = [r["seconds_per_real_step_by_part"] for r in runs.values() if r["seconds_per_real_step_by_part"]]
            entry["seconds_per_real_step_by_part"] = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]} if parts else {}
            entry["imagined_steps_per_real_step"] = _mean_std([r["imagined_steps_per_real_step"] for r in runs.values()])
            results["runs"][f"{env}/{variant}"] = entry
            curves[variant] = [tuple(zip(*r["train"])) for r in runs.values() if r["train"]]
        if curves:
            picture = learning_curves(curves, ROOT / "benchmarks" / "results" / f"{config.name}_{env}.png",
                                      title=f"{env}: training return (last 100 episodes), mean and 95% CI over seeds",
                                      xlabel="real env steps")
            (ROOT / "docs" / "img" / picture.name).write_bytes(picture.read_bytes())
    for key, entry in results["runs"].items():  # ratios to PPO in the same benchmark
        ppo = results["runs"].get(f"{key.split('/')[0]}/ppo")
        if ppo is None:
            continue
        for name in [n for n in entry if n.startswith(("train_", "eval_"))] + ["seconds_per_real_step"]:
            mine, theirs = entry[name]["mean"], ppo[name]["mean"]
            entry[name]["ratio_to_ppo"] = mine / theirs if mine is not None and theirs not in (None, 0) else None
    out = ROOT / "benchmarks" / "results" / f"{config.name}.json"
    out.write_text(json.dumps(results, indent=2))
    _print_tables(results, config)
    return results


def _print_tables(results: dict, config: Config) -> None:
    def cell(stat: dict, ratio: bool = True) -> str:
        if stat["mean"] is None:
            return "—"
        text = f"{stat['mean']:,.0f} ± {stat['std']:,.0f} ({stat['n']})"
        return text + (f", {stat['ratio_to_ppo']:.2f}×" if ratio and stat.get("ratio_to_ppo") is not None else "")

    milestones = list(map(str, config.milestones))
    print("| env | variant | " + " | ".join(f"train {int(m) // 1000}k | eval {int(m) // 1000}k" for m in milestones) + " |")
    print("| --- | --- |" + " ---: | ---: |" * len(milestones))
    for key, entry in results["runs"].items():
        env, variant = key.split("/")
        print(f"| {env} | {variant} | " + " | ".join(f"{cell(entry[f'train_{m}'])} | {cell(entry[f'eval_{m}'])}"
                                                    for m in milestones) + " |")
    print()
    print("| env | variant | ms per real step | ratio to PPO | imagined per real step | where the time goes (ms per real step) |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for key, entry in results["runs"].items():
        env, variant = key.split("/")
        seconds = entry["seconds_per_real_step"]
        parts = ", ".join(f"{part} {1000 * value:.3f}" for part, value in entry["seconds_per_real_step_by_part"].items() if value > 0)
        ratio = seconds.get("ratio_to_ppo")
        print(f"| {env} | {variant} | {1000 * seconds['mean']:.2f} | {'—' if ratio is None else f'{ratio:.2f}×'} "
              f"| {entry['imagined_steps_per_real_step']['mean']:.2f} | {parts} |")


if __name__ == "__main__":
    cfg = parse_config(Config)
    if not cfg.report_only:
        run_grid(cfg)
    report(cfg)
