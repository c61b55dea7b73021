"""PPO purely in an RSSM's dream of MuJoCo Walker2d, then scored in the real env.

    python recipes/dream_ppo_walker.py                                   # collect, train the RSSM, PPO in the dream
    python recipes/dream_ppo_walker.py --world_model=runs/dream_ppo_walker/checkpoints/world_model
    python recipes/dream_ppo_walker.py --help                            # every flag

Stages, each resumable (a killed run started again with the same flags goes on where it stopped):
random-policy episodes into ``<run_dir>/data``; the RSSM trained on them with lightning.Trainer
(or loaded from ``--world_model``); PPO, the same learner as on real envs, on a :class:`DreamEnv`
whose dreams start from states filtered from the real episodes. The policy never sees a real
step while learning. ``summary.json`` holds its return in the dream and in the real env over the
same horizon; their difference is the dream-to-real gap (how much the policy exploits the
model's mistakes), and the real return over whole episodes.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from worldkit.checkpoints import save_pretrained
from worldkit.cli import run_command
from worldkit.config import parse_config
from worldkit.controllers import PPO, PPOConfig, evaluate
from worldkit.data import SequenceDataModule, collect
from worldkit.dream.driver import evaluate_in_real_env
from worldkit.dream.env import DreamEnv, real_start_states
from worldkit.envs import make_env, parse_spec
from worldkit.models.rssm import PRESETS, RSSM
from worldkit.plots import learning_curves
from worldkit.runs import read_jsonl, save_atomically
from worldkit.spaces import check_compatible, require_flat_box
from worldkit.tracking import RunLogger, check_logger, check_wandb_mode, quiet_console
from worldkit.training import TrainerConfig, make_trainer


@dataclass
class Config:
    """PPO in the dream of an RSSM trained on a state-based MuJoCo task."""

    env: str = "Walker2d-v4"
    world_model: str | None = None
    """an RSSM checkpoint to dream in, instead of training one"""
    data_steps: int = 100_000
    """random-policy transitions to train the RSSM on (and to start dreams from)"""
    size: str = "S"
    """RSSM size preset: tiny, XS, S, M, L, XL, v1"""
    sequence_length: int = 50
    batch_size: int = 16
    model: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=10_000, val_check_interval=1_000))
    horizon: int = 200
    """dreamed steps before a dream is truncated (PPO bootstraps from it)"""
    temperature: float = 1.0
    """the RSSM's sampling temperature in the dream"""
    start_episodes: int = 500
    """real episodes filtered for start states"""
    eval_episodes: int = 10
    seed: int = 0
    run_dir: str = "runs/dream_ppo_walker"
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    logger: Literal["wandb", "tensorboard"] = "wandb"
    """where metrics go besides the run folder's files: W&B (in wandb_mode), or TensorBoard event
    files in <run_dir>/tensorboard"""
    verbose: bool = False
    """Lightning's and W&B's own messages too (a quiet console otherwise: progress bars and results)"""
    progress: bool = True
    torch_threads: int = 1
    """torch threads (1 is fastest for these small networks on a shared CPU)"""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(total_steps=2_000_000, num_envs=64, num_steps=64,
                                                             num_minibatches=8))
    """PPO's hyperparameters (num_envs dreams are stepped as one batch)"""

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"size must be one of {sorted(PRESETS)}, got {self.size!r}")
        if min(self.data_steps, self.horizon, self.start_episodes, self.eval_episodes, self.sequence_length) < 1:
            raise ValueError("data_steps, horizon, start_episodes, eval_episodes and sequence_length must be positive")


def main(config: Config) -> dict:
    check_wandb_mode(config.wandb_mode)
    check_logger(config.logger)
    quiet_console(config.verbose)
    spec = parse_spec(config.env)  # an unknown id fails here, before anything runs
    torch.set_num_threads(config.torch_threads)
    probe = make_env(spec)
    require_flat_box(probe.observation_space, f"this recipe (on {spec})")
    run_dir = Path(config.run_dir)
    model = None
    if config.world_model is not None:
        model = RSSM.from_pretrained(config.world_model)
        check_compatible(model, probe)  # a model of another env fails here, before any data is collected
    probe.close()
    torch.manual_seed(config.seed)

    store = collect(run_dir / "data", str(spec), steps=config.data_steps, seed=config.seed, progress=config.progress)
    if model is None:
        model = _train_world_model(config, store, run_dir)
    starts = real_start_states(model, (store.episode(i) for i in range(min(len(store), config.start_episodes))))

    dreams = DreamEnv(model, starts, config.ppo.num_envs, horizon=config.horizon, temperature=config.temperature)
    ppo = PPO(dataclasses.replace(config.ppo, seed=config.seed), dreams)
    state_file = run_dir / "ppo_state.pt"
    if state_file.exists():
        ppo.load_state_dict(torch.load(state_file, weights_only=True))
        print(f"resuming PPO in the dream at step {ppo.global_step}")
    logger = RunLogger(run_dir / "ppo", config, mode=config.wandb_mode, name=f"{run_dir.name}-ppo")

    def after_update(metrics: dict) -> None:
        logger.log({k: v for k, v in metrics.items() if np.isfinite(v)}, step=ppo.global_step)
        save_atomically(ppo.state_dict(), state_file)

    ppo.learn(progress=config.progress, callback=after_update)
    act = lambda features: ppo.agent.act(features, deterministic=True)  # noqa: E731
    dream_eval = DreamEnv(model, starts, 1, horizon=config.horizon, temperature=config.temperature)
    in_dream = evaluate(ppo.agent, dream_eval, config.eval_episodes, seed=config.seed)
    at_horizon = evaluate_in_real_env(model, act, str(spec), config.eval_episodes, seed=10_000 + config.seed,
                                      max_steps=config.horizon)
    whole = evaluate_in_real_env(model, act, str(spec), config.eval_episodes, seed=10_000 + config.seed)
    summary = {"env": str(spec), "dream_steps": ppo.global_step, "horizon": config.horizon,
               "dream_return": in_dream["mean_return"], "real_return_at_horizon": at_horizon["mean_return"],
               "dream_to_real_gap": in_dream["mean_return"] - at_horizon["mean_return"],
               "real_return": whole["mean_return"], "real_length": whole["mean_length"]}
    logger.log({f"eval/{key}": value for key, value in summary.items() if isinstance(value, (int, float))},
               step=ppo.global_step)
    logger.log_checkpoint(save_pretrained(ppo.agent, run_dir / "checkpoints" / "policy", metrics=summary),
                          f"{run_dir.name}-policy".replace("_", "-"), summary)
    history = read_jsonl(run_dir / "ppo" / "metrics.jsonl")
    curve = [(row["step"], row["episodic_return"]) for row in history if "episodic_return" in row]
    if curve:
        learning_curves({"PPO in the dream": [tuple(zip(*curve))]}, run_dir / "dream_learning_curve.png",
                        title=f"PPO in an RSSM dream of {spec} (real return {whole['mean_return']:.0f})",
                        xlabel="dreamed steps")
        logger.log_image("dream_learning_curve", run_dir / "dream_learning_curve.png")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    logger.finish()
    print(json.dumps(summary, indent=2))
    return summary


def _train_world_model(config: Config, store, run_dir: Path) -> RSSM:
    """The RSSM fitted with lightning.Trainer (resuming from its last.ckpt), saved as a checkpoint."""
    checkpoint = run_dir / "checkpoints" / "world_model"
    if (checkpoint / "config.json").exists():
        return RSSM.from_pretrained(checkpoint)
    data = SequenceDataModule(store, config.sequence_length, batch_size=config.batch_size, seed=config.seed)
    model = RSSM(store.observation_space, store.action_space, size=config.size)
    model.env_spec = store.env_spec
    stage_dir = run_dir / "world_model_training"
    last = stage_dir / "checkpoints" / "last.ckpt"
    trainer_config = dataclasses.replace(config.model, progress=config.model.progress and config.progress)
    trainer = make_trainer(trainer_config, stage_dir, wandb_mode=config.wandb_mode, hparams=config)
    trainer.fit(model, datamodule=data, ckpt_path=str(last) if last.exists() else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    save_pretrained(model, checkpoint, metrics=metrics)
    return model.eval()


if __name__ == "__main__":
    run_command(lambda: main(parse_config(Config)))  # a mistake in the flags is one line, not a traceback
