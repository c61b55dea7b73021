"""Ship the best walker-walk Dreamer agent of the cpu preset's seeds as checkpoints/dmc-walker-dreamer.

    python benchmarks/dreamer_checkpoint_card.py                       # the best seed of dreamer_walker_state_cpu.json
    python benchmarks/dreamer_checkpoint_card.py --run=benchmarks/runs/dreamer_state_cpu/seed0

Copies the run's agent (its RSSM and actor-critic, saved together), plays it on 10 fresh episodes
(reset seeds 30,000 and up: neither the run's evaluations nor the benchmark's final scoring used
them) and writes the checkpoint with a model card, the run's learning curve and a filmstrip of
the agent walking. Where the best seed is the one already shipped and its run folder is gone,
only the card is rewritten, with the seeds measured since.
"""

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.checkpoints import from_pretrained, save_pretrained
from worldkit.config import parse_config
from worldkit.controllers.dreamer import DreamerAgent
from worldkit.plots import filmstrip
from worldkit.video import FrameRecorder

ROOT = Path(__file__).resolve().parents[1]
EVAL_SEED = 30_000


@dataclass
class Config:
    name: str = "dmc-walker-dreamer"
    run: str | None = None
    """a finished Dreamer run folder; by default the best seed of benchmarks/results/dreamer_walker_state_cpu.json"""
    episodes: int = 10


def best_run() -> tuple[Path, dict]:
    results_file = ROOT / "benchmarks" / "results" / "dreamer_walker_state_cpu.json"
    if not results_file.exists():
        raise SystemExit(f"{results_file} is missing: run python benchmarks/dreamer_walker_state_cpu.py, or pass --run")
    results = json.loads(results_file.read_text())
    best = int(np.argmax(results["per_seed"]))
    return ROOT / "benchmarks" / "runs" / "dreamer_state_cpu" / f"seed{results['seeds'][best]}", results


def main(config: Config) -> dict:
    run, results = (Path(config.run), None) if config.run else best_run()
    finals = [] if results is None else results["per_seed"]
    out = ROOT / "checkpoints" / config.name
    if not run.exists() and _shipped_seed(out) == int(run.name.removeprefix("seed")):
        return refresh_card(config, out, finals)  # the best run is already shipped; its folder is gone
    run_config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    saved = from_pretrained(run / "checkpoints" / "agent")
    agent = DreamerAgent(saved.hparams["world_model"], saved.hparams["actor_critic"], run_config["action_repeat"])
    agent.load_state_dict(saved.state_dict())
    agent.env_spec = saved.env_spec
    agent.eval()

    result = agent.evaluate(episodes=config.episodes, seed=EVAL_SEED)
    returns = [float(r) for r in result["returns"]]
    frames: list[np.ndarray] = []  # the first of those episodes again, rendered for the filmstrip
    with FrameRecorder(agent.make_env(render_mode="rgb_array", size=(128, 128)), frames) as env:
        agent.evaluate(env, 1, seed=EVAL_SEED)
    metrics = {"mean_return": round(float(np.mean(returns)), 1),
               "standard_error": round(float(np.std(returns, ddof=1) / np.sqrt(len(returns))), 1),
               "eval_episodes": config.episodes, "eval_seed": EVAL_SEED, "env_steps": summary["env_steps"],
               "updates": summary["updates"], "training_hours": round(summary["wall_clock_seconds"] / 3600, 2),
               "seed": run_config["seed"], "env": run_config["env"], "preset": run_config["preset"],
               "action_repeat": run_config["action_repeat"]}
    shown = run.resolve().relative_to(ROOT) if run.resolve().is_relative_to(ROOT) else run
    command = f"python benchmarks/dreamer_checkpoint_card.py --run={shown}"
    card = model_card(config.name, metrics, finals, date.today().isoformat())
    save_pretrained(agent, out, metrics=metrics, command=command, card=card)
    filmstrip(frames[:: max(1, len(frames) // 8)][:8], out / "filmstrip.png", title=f"{config.name}: a fresh episode")
    shutil.copy(run / "learning_curve.png", out / "learning_curve.png")
    print(card)
    return metrics


def _shipped_seed(out: Path) -> "int | None":
    config_file = out / "config.json"
    return json.loads(config_file.read_text())["metrics"].get("seed") if config_file.exists() else None


def refresh_card(config: Config, out: Path, finals: list[float]) -> dict:
    """The shipped agent's card rewritten with the seeds measured since (its weights and pictures unchanged)."""
    shipped = json.loads((out / "config.json").read_text())
    metrics = {"env": shipped["env_spec"], "preset": "cpu", "action_repeat": shipped["hparams"]["action_repeat"],
               **shipped["metrics"]}
    card = model_card(config.name, metrics, finals, shipped["created"][:10])
    (out / "README.md").write_text(card)
    print(card)
    return metrics


def model_card(name: str, metrics: dict, finals: list[float], day: str) -> str:
    seeds = "" if not finals else (
        f"It is the best of {len(finals)} seeds of `python benchmarks/dreamer_walker_state_cpu.py` (final actors: "
        f"{', '.join(f'{v:.0f}' for v in finals)}; see docs/benchmarks.md)." if len(finals) > 1 else
        f"It is the one seed of `python benchmarks/dreamer_walker_state_cpu.py` measured so far (final actor: "
        f"{finals[0]:.0f} over its own 10 episodes; see docs/benchmarks.md).")
    return f"""# {name}

A Dreamer agent for dm-control walker-walk from its state vector: a tiny RSSM world model and the
actor-critic trained in its imagination, saved together. It trained with
`python recipes/dreamer.py --env={metrics['env']} --preset={metrics['preset']} --seed={metrics['seed']}` for
{metrics['env_steps']:,} env steps (each action held for {metrics['action_repeat']}), {metrics['updates']:,} updates in
{metrics['training_hours']} h on a 2-core CPU. {seeds}

| | |
| --- | --- |
| return, deterministic actor | {metrics['mean_return']} ± {metrics['standard_error']} (s.e.) over {metrics['eval_episodes']} fresh episodes, reset seeds {metrics['eval_seed']:,}+ |
| DreamerV3 at 100k env steps | 443 to 475 (published) |
| date | {day} |

![the agent walking](filmstrip.png)

![learning curve of its run](learning_curve.png)

```python
from worldkit.checkpoints import from_pretrained
agent = from_pretrained("{name}")
agent.evaluate(episodes=10)            # real episodes, the actor deterministic
```

or `worldkit eval {name} --video=walker.mp4` to watch it. It replaces `dmc-walker-rssm`
(an RSSM of random play, still shipped and loadable) as the walker example.
"""


if __name__ == "__main__":
    main(parse_config(Config))
