"""Model-based PPO with adaptive imagination and adaptive curiosity (after the
adaptive-imagination write-up), and plain PPO.

    python recipes/mbppo_hopper.py                                  # MBPPO, Hopper-v4, 300k real steps
    python recipes/mbppo_hopper.py --env=Walker2d-v4 --seeds 1 2 3 --mbppo.ensemble_size=7
    python recipes/mbppo_hopper.py --mbppo.min_rollouts=50 --mbppo.max_rollouts=400 --mbppo.horizon=3
    python recipes/mbppo_hopper.py --mbppo.curiosity=model_error    # or rnd (default), none
    python recipes/mbppo_hopper.py --env=CartPole-v1                # discrete actions
    python recipes/mbppo_hopper.py --method=ppo                     # the baseline, same settings
    python recipes/mbppo_hopper.py --help                           # every flag

Each seed writes to ``<run_dir>/<env>-<method>-seed<k>/``: metrics (JSONL/CSV, every update,
the adaptive quantities included), evaluations, a learning curve, a plot of the adaptive
quantities (confidence, rollouts, beta, model loss, real vs imagined reward), the policy and
the dynamics ensemble as checkpoints. A killed run started again with the same flags resumes
from its last saved state (saved at each evaluation).
"""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from worldkit.checkpoints import save_pretrained
from worldkit.cli import run_command
from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.mbppo import AdaptiveImagination, ImaginationConfig
from worldkit.envs import parse_spec
from worldkit.plots import learning_curves
from worldkit.runs import open_ppo_run, read_jsonl, train_ppo_in_run
from worldkit.tracking import TrackingOptions


@dataclass
class Config(TrackingOptions):
    """Model-based PPO on a state-based env: the one PPO learner plus adaptive imagination."""

    env: str = "Hopper-v4"
    """any state-based gymnasium MuJoCo id (Hopper-v4, Walker2d-v4, ...) or CartPole-v1"""
    method: Literal["mbppo", "ppo"] = "mbppo"
    """mbppo, or plain PPO with the same PPO settings (the baseline)"""
    total_steps: int = 300_000
    """real env steps per seed"""
    seeds: tuple[int, ...] = (1,)
    eval_every: int = 20_000
    """real env steps between deterministic evaluations (and saved states)"""
    eval_episodes: int = 5
    run_dir: str = "runs/mbppo"
    mbppo: ImaginationConfig = field(default_factory=ImaginationConfig)
    """the ensemble, adaptive imagination and curiosity (--mbppo.ensemble_size, --mbppo.min_rollouts,
    --mbppo.max_rollouts, --mbppo.horizon, --mbppo.curiosity, ...; the seed is set from --seeds)"""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO's hyperparameters (total_steps and seed are set from the flags above)"""

    def __post_init__(self) -> None:
        if self.eval_every < 1 or self.eval_episodes < 1:
            raise ValueError(f"eval_every and eval_episodes must be positive, got {self.eval_every}, {self.eval_episodes}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.total_steps < self.ppo.batch_size:
            raise ValueError(f"total_steps ({self.total_steps}) is less than one PPO rollout "
                             f"(ppo.num_steps * ppo.num_envs = {self.ppo.batch_size})")


def main(config: Config) -> list[dict]:
    config.start_reporting()
    spec = parse_spec(config.env)  # an unknown id fails here, before anything runs
    return [run_seed(config, spec, seed) for seed in config.seeds]


def run_seed(config: Config, spec, seed: int) -> dict:
    run_dir, ppo_config, envs = open_ppo_run(config, spec, seed, _RESUMABLE_CHANGES)
    observation_space, action_space = envs.single_observation_space, envs.single_action_space
    hook = None
    if config.method == "mbppo":
        hook = AdaptiveImagination(dataclasses.replace(config.mbppo, seed=seed), observation_space, action_space,
                                   env_spec=str(spec))
        envs = hook.record(envs)
    ppo = PPO(ppo_config, envs, [hook] if hook else [])

    evaluations, logger = train_ppo_in_run(
        ppo, spec, run_dir, config,
        on_evaluation=lambda row: _save_checkpoints(run_dir, ppo, hook, {"eval_mean_return": row["mean_return"],
                                                                        "steps": ppo.global_step}))
    summary = _write_artifacts(config, spec, run_dir, ppo, hook, evaluations, logger)
    logger.finish()
    return summary


def _save_checkpoints(run_dir: Path, ppo: PPO, hook: AdaptiveImagination | None, metrics: dict) -> None:
    """The policy and the ensemble (which takes raw observations, so any controller can dream in it)."""
    save_pretrained(ppo.agent, run_dir / "checkpoints" / "policy", metrics=metrics)
    if hook is not None:
        save_pretrained(hook.model, run_dir / "checkpoints" / "ensemble", metrics=metrics)


def _write_artifacts(config, spec, run_dir, ppo, hook, evaluations, logger) -> dict:
    """Checkpoints, pictures and the run's summary, once training has finished."""
    history = read_jsonl(run_dir / "metrics.jsonl")
    train = [(row["step"], row["episodic_return"]) for row in history if "episodic_return" in row]
    seconds = sum(row.get("rollout_time", 0.0) + row.get("update_time", 0.0) for row in history)
    summary = {
        "env": str(spec), "method": config.method, "seed": ppo.config.seed, "steps": ppo.global_step,
        "total_steps": config.total_steps,
        "final_train_return_last100": train[-1][1] if train else None,
        "final_eval_return": evaluations[-1]["mean_return"] if evaluations else None,
        "seconds_per_real_step": seconds / ppo.global_step if ppo.global_step else None,
    }
    command_metrics = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    _save_checkpoints(run_dir, ppo, hook, command_metrics)
    if hook is not None:
        logger.log_checkpoint(run_dir / "checkpoints" / "ensemble", f"{spec.name}-dynamics-ensemble", command_metrics)

    curves = {"train (last 100 episodes)": [tuple(zip(*train))] if train else []}
    if evaluations:
        curves["deterministic evaluation"] = [([e["step"] for e in evaluations], [e["mean_return"] for e in evaluations])]
    logger.log_image("learning_curve", learning_curves(curves, run_dir / "learning_curve.png",
                                                       title=f"{spec.name} {config.method} seed {ppo.config.seed}"))
    if hook is not None:
        logger.log_image("adaptive_quantities", plot_adaptive_quantities(history, run_dir / "adaptive_quantities.png",
                                                                         title=f"{spec.name} MBPPO seed {ppo.config.seed}"))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def plot_adaptive_quantities(history: list[dict], path: Path, title: str = "") -> Path:
    """Five panels over real env steps: confidence, imagined rollouts, beta, model losses, real vs imagined reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def series(key):
        rows = [(row["step"], row[key]) for row in history if key in row and math.isfinite(row[key])]
        return tuple(zip(*rows)) if rows else ((), ())

    panels = [
        ("model confidence", ["mbppo/confidence"]),
        ("imagined rollouts per iteration", ["mbppo/num_rollouts"]),
        ("curiosity weight beta", ["mbppo/beta"]),
        ("model loss (normalised units)", ["mbppo/model_loss", "mbppo/held_out_loss"]),
        ("mean reward per step (raw)", ["mbppo/real_reward", "mbppo/imagined_reward"]),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (label, keys) in zip(axes, panels):
        for key in keys:
            ax.plot(*series(key), label=key.split("/")[-1])
        ax.set(title=label, xlabel="real env steps")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# Settings that may change when a run is continued; any other difference means another experiment.
_RESUMABLE_CHANGES = {"total_steps", "seeds", "eval_every", "eval_episodes", "run_dir", "wandb_mode", "progress",
                      "logger", "verbose"}


if __name__ == "__main__":
    run_command(lambda: main(parse_config(Config)))  # a mistake in the flags is one line, not a traceback
