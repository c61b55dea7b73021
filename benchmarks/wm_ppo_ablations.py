"""The paper draft's ablations of world-model-assisted PPO on Walker2d-v4 (its Figs. 4 and 5): the
latent size z and the intrinsic-reward weight alpha, each varied from the draft's settings
(``--preset=paper``: z = 32, alpha = 0.01, the world model's gradients clipped with the policy's).

    python benchmarks/wm_ppo_ablations.py --jobs=2             # run what is missing, then report
    python benchmarks/wm_ppo_ablations.py --report_only=True   # report from the runs on disk

    python benchmarks/wm_ppo_ablations.py --variants z16 z64 --seeds 4 5   # add seeds to some variants

Each (variant, seed) is one ``recipes/wm_ppo_walker.py`` run of 1M steps in ``<run_dir>/<variant>/``;
finished runs are skipped and killed ones resume. PPO is the same seeds of
``benchmarks/wm_ppo_default_vs_ppo.py``'s grid, read from its results. Protocol: the training return
over the last 100 episodes at 1M steps, and the mean of 5 deterministic evaluation episodes (seeds
10,000 + seed) at 1M steps. Writes benchmarks/results/wm_ppo_ablations.json with each seed's values
and thinned training curve, keeping the seeds it records whose run folders are gone (each credited
to the run that measured it); ``python benchmarks/report.py`` summarises them (IQM with a 95%
stratified bootstrap CI over seeds) and draws the curves.
"""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, provenance
from wm_ppo_default_vs_ppo import _thinned

from worldkit.config import parse_config
from worldkit.files import read_jsonl

ENV = "Walker2d-v4"
VARIANTS = {  # folder -> (label, the recipe's flags beside --preset=paper)
    "z16": ("WM-PPO z=16", ("--latent_dim=16",)),
    "draft": ("WM-PPO z=32, alpha=0.01 (the draft's)", ()),
    "z64": ("WM-PPO z=64", ("--latent_dim=64",)),
    "alpha0": ("WM-PPO alpha=0", ("--alpha=0",)),
    "alpha005": ("WM-PPO alpha=0.05", ("--alpha=0.05",)),
}
EARLIER_LABELS = {"WM-PPO z=32 (default)": "WM-PPO z=32, alpha=0.01 (the draft's)",
                  "WM-PPO alpha=0.01 (default)": "WM-PPO z=32, alpha=0.01 (the draft's)"}
"""labels that older results files give the draft's settings"""
FIGURES = {"latent": ["PPO", "WM-PPO z=16", "WM-PPO z=32, alpha=0.01 (the draft's)", "WM-PPO z=64"],
           "alpha": ["PPO", "WM-PPO alpha=0", "WM-PPO z=32, alpha=0.01 (the draft's)", "WM-PPO alpha=0.05"]}
"""which variants each figure of benchmarks/report.py shows"""


@dataclass
class Config:
    seeds: tuple[int, ...] = (1, 2, 3)
    variants: tuple[str, ...] = tuple(VARIANTS)
    """which of them to run (all are reported)"""
    total_steps: int = 1_000_000
    jobs: int = 1
    """runs at once (each uses one core)"""
    run_dir: str = "benchmarks/runs/wm_ppo_ablation"
    report_only: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")


def run_one(config: Config, variant: str, seed: int) -> None:
    folder = ROOT / config.run_dir / variant
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "recipes" / "wm_ppo_walker.py"), f"--env={ENV}", "--method=wm_ppo",
               "--preset=paper", *VARIANTS[variant][1], "--seeds", str(seed), f"--total_steps={config.total_steps}",
               f"--run_dir={folder}", "--progress=False", "--wandb_mode=disabled"]
    print("start", " ".join(command[1:]), flush=True)
    with open(folder / f"seed{seed}.log", "a") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=True)


def finished(folder: Path, method: str, seeds: tuple[int, ...]) -> dict:
    """The finished seeds of one variant: final training and evaluation returns, thinned curves."""
    runs = {"seeds": [], "final_train": [], "final_eval": [], "curves": []}
    for seed in seeds:
        run = folder / f"{ENV}-{method}-seed{seed}"
        if not (run / "summary.json").exists():
            continue
        train = [(r["step"], r["episodic_return"]) for r in read_jsonl(run / "metrics.jsonl") if "episodic_return" in r]
        if not train:  # a run too short to finish an episode has no training return
            continue
        runs["seeds"].append(seed)
        runs["final_train"].append(train[-1][1])
        runs["final_eval"].append(read_jsonl(run / "evaluations.jsonl")[-1]["mean_return"])
        runs["curves"].append(_thinned(train))
    return runs


def grid_ppo(seeds: tuple[int, ...]) -> dict:
    """PPO's runs of these seeds, from benchmarks/wm_ppo_default_vs_ppo.py's results."""
    grid = json.loads((ROOT / "benchmarks" / "results" / "wm_ppo_default_vs_ppo.json").read_text())
    key = f"{ENV}/ppo"
    rows = [i for i, seed in enumerate(grid["seeds"][key]) if seed in seeds]
    return {"seeds": [grid["seeds"][key][i] for i in rows], "final_train": [grid["per_seed"][key][i] for i in rows],
            "final_eval": [grid["eval_per_seed"][key][i] for i in rows], "curves": [grid["curves"][key][i] for i in rows],
            "from": "benchmarks/results/wm_ppo_default_vs_ppo.json"}


def with_recorded_seeds(old: dict, new: dict) -> dict:
    """``new`` plus the (variant, seed) results that ``old`` records and ``new`` lacks (their run
    folders are gone), each credited in ``earlier_runs`` to the run that measured it."""
    kept: dict[str, list[int]] = {}
    for old_label, run in old.items():
        label = EARLIER_LABELS.get(old_label, old_label)
        if label == "PPO" or not isinstance(run, dict) or not isinstance(new.get(label), dict):
            continue
        for i, seed in enumerate(run.get("seeds", [])):
            if seed in new[label]["seeds"]:
                continue
            target = new[label]
            target["seeds"].append(seed)
            target["final_train"].append(run["final_train"][i])
            target["final_eval"].append(run["final_eval"][i])
            if len(run.get("curves", [])) == len(run["seeds"]):
                target["curves"].append(run["curves"][i])
            kept.setdefault(label, []).append(seed)
    for label in kept:  # in seed order
        run = new[label]
        order = sorted(range(len(run["seeds"])), key=run["seeds"].__getitem__)
        for key in ("seeds", "final_train", "final_eval", "curves"):
            if len(run[key]) == len(order):  # curves: where every seed has one
                run[key] = [run[key][i] for i in order]
    earlier = []  # the earlier runs' seeds that are still kept, each with the run that measured it
    for run in old.get("earlier_runs", []):
        seeds = {label: [s for s in seeds if s in kept.get(label, [])] for label, seeds in run["seeds"].items()}
        if any(seeds.values()):
            earlier.append({**run, "seeds": {label: s for label, s in seeds.items() if s}})
    if kept:
        print(f"kept from the recorded results (their run folders are absent): {kept}")
        credited = {(label, seed) for run in earlier for label, seeds in run["seeds"].items() for seed in seeds}
        fresh = {label: [s for s in seeds if (label, s) not in credited] for label, seeds in kept.items()}
        if any(fresh.values()):
            earlier.append({"command": old.get("command"), "commit": old.get("commit"),
                            "seeds": {label: seeds for label, seeds in fresh.items() if seeds}})
    return {**new, "earlier_runs": earlier} if earlier else new


def report(config: Config) -> dict:
    results = {**provenance(), "env": ENV, "total_steps": config.total_steps,
               "protocol": {"train": "mean return of the last 100 training episodes at the final step",
                            "eval": "mean of 5 deterministic episodes at the final step, seeds 10,000 + seed"},
               "figures": FIGURES}
    for variant, (label, _) in VARIANTS.items():
        results[label] = finished(ROOT / config.run_dir / variant, "wm_ppo", config.seeds)
    path = ROOT / "benchmarks" / "results" / "wm_ppo_ablations.json"
    if path.exists():
        results = with_recorded_seeds(json.loads(path.read_text()), results)
    labels = [label for label, _ in VARIANTS.values()]
    ppo = grid_ppo(tuple({seed for label in labels for seed in results[label]["seeds"]}))
    results = {**{k: v for k, v in results.items() if k not in labels}, "PPO": ppo, **{k: results[k] for k in labels}}
    path.write_text(json.dumps(results, indent=2) + "\n")
    for label in ["PPO", *(label for label, _ in VARIANTS.values())]:
        print(f"{label:40s} seeds {results[label]['seeds']}  train {[round(v) for v in results[label]['final_train']]}")
    return results


if __name__ == "__main__":
    cfg = parse_config(Config)
    if not cfg.report_only:
        pending = [(variant, seed) for seed in cfg.seeds for variant in cfg.variants
                   if not (ROOT / cfg.run_dir / variant / f"{ENV}-wm_ppo-seed{seed}" / "summary.json").exists()]
        with ThreadPoolExecutor(max(1, cfg.jobs)) as pool:  # each run is its own process
            for done in [pool.submit(run_one, cfg, variant, seed) for variant, seed in pending]:
                done.result()
    report(cfg)
