"""A finished Dreamer run's final actor, scored on more real episodes than the run's own evaluations.

    python benchmarks/dreamer_final_eval.py benchmarks/runs/dreamer_walker_tiny_r256 --episodes=10

Loads ``<run>/checkpoints/world_model`` and ``actor_critic`` and plays the deterministic actor in
the run's env with its action repeat, on reset seeds 20,000 and up (none the run evaluated on).
Prints and writes ``<run>/final_eval.json``: each episode's return, their mean and standard error.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from worldkit.checkpoints import from_pretrained
from worldkit.dream.driver import evaluate_in_real_env
from worldkit.envs import make_env, parse_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    config = json.loads((args.run_dir / "config.json").read_text())
    model = from_pretrained(args.run_dir / "checkpoints" / "world_model").eval()
    actor_critic = from_pretrained(args.run_dir / "checkpoints" / "actor_critic").eval()
    env = make_env(parse_spec(config["env"], config["obs"]), action_repeat=config["action_repeat"])
    result = evaluate_in_real_env(model, lambda f: actor_critic.act(f, deterministic=True), env, args.episodes,
                                  seed=20_000)
    env.close()
    returns = [float(r) for r in result["returns"]]
    report = {"run": str(args.run_dir), "episodes": args.episodes, "returns": returns, "mean": float(np.mean(returns)),
              "standard_error": float(np.std(returns, ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else None}
    (args.run_dir / "final_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
