"""The default world-model-assisted PPO against plain PPO at 1M steps, on three MuJoCo tasks.

    python benchmarks/wm_ppo_default_vs_ppo.py                     # run what is missing, then report
    python benchmarks/wm_ppo_default_vs_ppo.py --report_only=True  # report from the runs on disk

Each (env, method, seed) is one ``recipes/wm_ppo_walker.py`` run with the recipe's defaults
(``--preset=default``, PPO's preset chosen by env); finished runs are skipped and killed ones
resume. Protocol: the training return over the last 100 episodes at 1M steps, and the mean of 5
deterministic evaluation episodes (seeds 10,000 + seed) at 1M steps; IQM and mean with 95%
stratified bootstrap CIs over seeds. Writes benchmarks/results/wm_ppo_default_vs_ppo.json, with each
seed's training curve, which ``python benchmarks/report.py`` draws.
"""

import json
from dataclasses import dataclass

from common import ROOT, interval_estimates, provenance
from wm_ppo_returns import Config as GridConfig
from wm_ppo_returns import _run_path, run_grid

from worldkit.config import parse_config
from worldkit.files import read_jsonl


@dataclass
class Config:
    envs: tuple[str, ...] = ("Walker2d-v4", "HalfCheetah-v4", "Hopper-v4")
    methods: tuple[str, ...] = ("ppo", "wm_ppo")
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    total_steps: int = 1_000_000
    jobs: int = 1
    """runs at once (each uses one core)"""
    run_dir: str = "benchmarks/runs/wm_ppo_default"
    report_only: bool = False


def report(config: Config) -> dict:
    grid = _grid(config)
    results = {**provenance(), "total_steps": config.total_steps,
               "protocol": {"train": "mean return of the last 100 training episodes at the final step",
                            "eval": "mean of 5 deterministic episodes at the final step, seeds 10,000 + seed"},
               "per_seed": {}, "eval_per_seed": {}, "seeds": {}, "hours_per_seed": {}, "stats": {}, "curves": {},
               "eval_curves": {}}
    for env in config.envs:
        for method in config.methods:
            key, finished = f"{env}/{method}", []
            for seed in config.seeds:
                path = _run_path(grid, env, method, seed)
                if (path / "summary.json").exists():
                    rows = read_jsonl(path / "metrics.jsonl")
                    train = [(r["step"], r["episodic_return"]) for r in rows if "episodic_return" in r]
                    seconds = sum(r.get("rollout_time", 0.0) + r.get("update_time", 0.0) for r in rows)
                    evaluations = read_jsonl(path / "evaluations.jsonl")
                    finished.append((seed, train, evaluations[-1]["mean_return"], seconds,
                                     [[r["step"] for r in evaluations], [round(r["mean_return"], 1) for r in evaluations]]))
            if not finished:
                continue
            results["seeds"][key] = [f[0] for f in finished]
            results["per_seed"][key] = [f[1][-1][1] for f in finished]
            results["eval_per_seed"][key] = [f[2] for f in finished]
            results["hours_per_seed"][key] = [round(f[3] / 3600, 3) for f in finished]
            results["stats"][key] = {"train": interval_estimates({env: results["per_seed"][key]}),
                                     "eval": interval_estimates({env: results["eval_per_seed"][key]})}
            results["curves"][key] = [_thinned(f[1]) for f in finished]  # benchmarks/report.py draws them
            results["eval_curves"][key] = [f[4] for f in finished]  # [steps, deterministic returns] of each seed
    out = ROOT / "benchmarks" / "results" / "wm_ppo_default_vs_ppo.json"
    out.write_text(json.dumps(results, indent=2))
    for key, stats in results["stats"].items():
        train, evaluation = stats["train"], stats["eval"]
        print(f"{key:28s} seeds {train['seeds']}  train IQM {train['iqm']:7.0f} [{train['iqm_ci'][0]:.0f}, "
              f"{train['iqm_ci'][1]:.0f}]  eval IQM {evaluation['iqm']:7.0f} [{evaluation['iqm_ci'][0]:.0f}, "
              f"{evaluation['iqm_ci'][1]:.0f}]")
    return results


def _thinned(curve: list[tuple[int, float]], points: int = 250) -> list[list[float]]:
    """A training curve as [steps, returns] at about ``points`` evenly spaced rows, the last kept."""
    keep = sorted({round(i * (len(curve) - 1) / (points - 1)) for i in range(points)}) if len(curve) > points else range(len(curve))
    return [[curve[i][0] for i in keep], [round(curve[i][1], 1) for i in keep]]


def _grid(config: Config) -> GridConfig:
    return GridConfig(envs=config.envs, methods=config.methods, seeds=config.seeds, total_steps=config.total_steps,
                      jobs=config.jobs, run_dir=config.run_dir)


if __name__ == "__main__":
    cfg = parse_config(Config)
    (ROOT / cfg.run_dir).mkdir(parents=True, exist_ok=True)
    if not cfg.report_only:
        run_grid(_grid(cfg))
    report(cfg)
