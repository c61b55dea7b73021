"""Seed 000's ablations of world-model-assisted PPO on Walker2d-v4: latent size z (its Fig. 4) and
intrinsic-reward weight alpha (its Fig. 5), from finished `recipes/wm_ppo_walker.py` runs.

    python benchmarks/wm_ppo_returns.py --envs Walker2d-v4 --methods wm_ppo --seeds 1 \\
        --run_dir=benchmarks/runs/wm_ppo_latent16 --extra=--latent_dim=16      # and so on per variant
    python benchmarks/wm_ppo_ablations.py                                      # the report

The default variant (z = 32, alpha = 0.01) and plain PPO come from the main grid
(benchmarks/runs/wm_ppo); each other variant has its own folder. Writes
benchmarks/results/wm_ppo_ablations.json, one learning-curve PNG per ablation (also into
docs/img), and prints the markdown table that docs/benchmarks.md carries.
"""

import json
from pathlib import Path

import numpy as np
from common import provenance

from worldkit.files import read_jsonl
from worldkit.plots import learning_curves

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "runs"
ENV = "Walker2d-v4"
VARIANTS = {  # label -> (run folder, method)
    "PPO": ("wm_ppo", "ppo"),
    "WM-PPO z=16": ("wm_ppo_latent16", "wm_ppo"),
    "WM-PPO z=32 (default)": ("wm_ppo", "wm_ppo"),
    "WM-PPO z=64": ("wm_ppo_latent64", "wm_ppo"),
    "WM-PPO alpha=0": ("wm_ppo_alpha0", "wm_ppo"),
    "WM-PPO alpha=0.01 (default)": ("wm_ppo", "wm_ppo"),
    "WM-PPO alpha=0.05": ("wm_ppo_alpha005", "wm_ppo"),
}
FIGURES = {"latent": ["PPO", "WM-PPO z=16", "WM-PPO z=32 (default)", "WM-PPO z=64"],
           "alpha": ["PPO", "WM-PPO alpha=0", "WM-PPO alpha=0.01 (default)", "WM-PPO alpha=0.05"]}


def finished_runs(folder: str, method: str) -> list[dict]:
    """Every finished seed of one variant: its training curve and final returns."""
    runs = []
    for summary_file in sorted((RUNS / folder).glob(f"{ENV}-{method}-seed*/summary.json")):
        rows = read_jsonl(summary_file.parent / "metrics.jsonl")
        summary = json.loads(summary_file.read_text())
        runs.append({"seed": summary["seed"], "final_train": summary["final_train_return_last100"],
                     "final_eval": summary["final_eval_return"],
                     "train": [(r["step"], r["episodic_return"]) for r in rows if "episodic_return" in r]})
    return runs


def main() -> None:
    results = {label: finished_runs(*where) for label, where in VARIANTS.items()}
    for name, labels in FIGURES.items():
        curves = {label: [tuple(zip(*run["train"])) for run in results[label]] for label in labels}
        picture = learning_curves(curves, ROOT / "benchmarks" / "results" / f"wm_ppo_ablation_{name}.png",
                                  title=f"{ENV}: WM-PPO {name} ablation, training return (last 100 episodes)")
        (ROOT / "docs" / "img" / picture.name).write_bytes(picture.read_bytes())
    table = {label: {"seeds": [r["seed"] for r in runs], "final_train": [r["final_train"] for r in runs],
                     "final_eval": [r["final_eval"] for r in runs]} for label, runs in results.items()}
    (ROOT / "benchmarks" / "results" / "wm_ppo_ablations.json").write_text(
        json.dumps({**provenance(), **table}, indent=2) + "\n")
    print("| variant | seeds | train return, last 100 episodes | deterministic eval | seed 1: train, eval |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, row in table.items():
        train, evals = np.array(row["final_train"]), np.array(row["final_eval"])
        first = row["seeds"].index(1) if 1 in row["seeds"] else None
        seed_one = "—" if first is None else f"{train[first]:,.0f}, {evals[first]:,.0f}"
        print(f"| {label} | {', '.join(map(str, row['seeds']))} | {train.mean():,.0f} ± {train.std():,.0f} "
              f"| {evals.mean():,.0f} ± {evals.std():,.0f} | {seed_one} |")


if __name__ == "__main__":
    main()
