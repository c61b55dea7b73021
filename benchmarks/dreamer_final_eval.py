"""A finished Dreamer run's final actor, scored on more real episodes than the run's own evaluations.

    python benchmarks/dreamer_final_eval.py benchmarks/runs/dreamer_walker_tiny_r256 --episodes=10

Loads ``<run>/checkpoints/agent`` (the world model and actor saved together) and plays the
deterministic actor in the run's env with its action repeat, on reset seeds 20,000 and up (none
the run evaluated on).
Prints and writes ``<run>/final_eval.json``: each episode's return, their mean and standard error
(and on MiniWorld the success rate).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from worldkit.checkpoints import from_pretrained
from worldkit.envs import make_env, parse_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    report = final_eval(args.run_dir, args.episodes)
    print(json.dumps(report))


def final_eval(run_dir: Path, episodes: int = 10) -> dict:
    """Score a finished run's agent on ``episodes`` fresh episodes; writes ``<run>/final_eval.json``."""
    config = json.loads((run_dir / "config.json").read_text())
    agent = from_pretrained(run_dir / "checkpoints" / "agent")
    spec = parse_spec(config["env"], config["obs"])
    env = make_env(spec, action_repeat=config["action_repeat"], size=(64, 64) if spec.obs == "pixels" else None)
    result = agent.evaluate(env, episodes, seed=20_000)
    env.close()
    returns = [float(r) for r in result["returns"]]
    report = {"run": str(run_dir), "episodes": episodes, "returns": returns, "mean": float(np.mean(returns)),
              "standard_error": float(np.std(returns, ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else None}
    if spec.family == "miniworld":  # tasks with a goal: the share of episodes that reached it
        report["success_rate"] = result["success_rate"]
    (run_dir / "final_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
