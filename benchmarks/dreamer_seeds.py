"""Dreamer runs of one setting over several seeds, gathered: learning curves, wall-clock, final actors.

    python benchmarks/dreamer_final_eval.py benchmarks/runs/<run> --episodes=10   # each run first
    python benchmarks/dreamer_seeds.py benchmarks/runs/<run 1> benchmarks/runs/<run 2> --name=<name> \\
        [--earlier benchmarks/results/<an earlier run's results>.json]

Reads each finished run's ``config.json``, ``evaluations.jsonl``, ``summary.json`` and
``final_eval.json``; ``--earlier`` adds runs whose folders are gone, from the results files they
left (evaluations and ``final_actor_10_episodes``). Writes ``benchmarks/results/<name>.json``, whose
curves ``python benchmarks/report.py`` draws (a new name needs its title there), and prints one
line per run.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from common import provenance

from worldkit.files import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
FINAL_ACTOR_KEYS = ("returns", "mean", "standard_error")


def read_run(run_dir: Path) -> dict:
    """One finished run: its seed, evaluations, wall-clock and final actor's return."""
    missing = [name for name in ("config.json", "evaluations.jsonl", "summary.json", "final_eval.json")
               if not (run_dir / name).exists()]
    if missing:
        hint = " (run benchmarks/dreamer_final_eval.py on it)" if "final_eval.json" in missing else ""
        raise SystemExit(f"{run_dir} is not a finished, evaluated run: no {', '.join(missing)}{hint}")
    config = json.loads((run_dir / "config.json").read_text())
    final = json.loads((run_dir / "final_eval.json").read_text())
    return {"run": str(run_dir), "seed": config["seed"],
            "evaluations": read_jsonl(run_dir / "evaluations.jsonl"),
            "wall_clock_seconds": json.loads((run_dir / "summary.json").read_text())["wall_clock_seconds"],
            "final_actor": {key: final[key] for key in FINAL_ACTOR_KEYS}}


def read_earlier(results_file: Path) -> dict:
    """A run known only from the results file it left."""
    results = json.loads(results_file.read_text())
    return {"run": str(results_file), "seed": results["config"]["seed"], "evaluations": results["evaluations"],
            "wall_clock_seconds": results.get("wall_clock_seconds"),
            "final_actor": {key: results["final_actor_10_episodes"][key] for key in FINAL_ACTOR_KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--earlier", type=Path, nargs="*", default=[])
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    runs = [read_run(run) for run in args.runs] + [read_earlier(file) for file in args.earlier]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) < len(seeds):
        raise SystemExit(f"runs of one setting should differ in seed; got seeds {seeds}")
    finals = [run["final_actor"]["mean"] for run in runs]
    report = {
        **provenance(),
        "runs": runs,
        "final_actor_mean_over_seeds": float(np.mean(finals)),
        "final_actor_standard_error_over_seeds": float(np.std(finals, ddof=1) / np.sqrt(len(finals)))
        if len(finals) > 1 else None,
    }
    (ROOT / "benchmarks" / "results" / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    for run in runs:
        hours = "?" if run["wall_clock_seconds"] is None else f"{run['wall_clock_seconds'] / 3600:.2f} h"
        evaluations = ", ".join(f"{e['mean_return']:.0f}" for e in run["evaluations"])
        error = run["final_actor"]["standard_error"]
        print(f"seed {run['seed']}: final actor {run['final_actor']['mean']:.0f} ± "
              f"{'?' if error is None else f'{error:.0f}'}, {hours}; evaluations {evaluations}")
    print(f"mean over seeds: {report['final_actor_mean_over_seeds']:.0f}")


if __name__ == "__main__":
    main()
