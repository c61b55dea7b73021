"""Dreamer online: collect whole episodes, train the world model and the actor-critic at a replay
ratio, evaluate in the real env, and resume after a kill from the last saved state.

The episodes live in an :class:`~worldkit.data.EpisodeStore` (they survive a crash); every
``eval_every`` env steps the actor is scored and the whole training state is saved atomically.
"""

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from worldkit.checkpoints import save_pretrained
from worldkit.controllers.dreamer import DreamerConfig, DreamerLearner
from worldkit.data import EpisodeStore
from worldkit.data.datasets import SequenceDataset
from worldkit.dream.driver import WorldModelPolicy, drive, evaluate_in_real_env
from worldkit.dream.open_loop import open_loop_picture
from worldkit.envs import make_env, parse_spec
from worldkit.models.rssm import PRESETS, RSSM
from worldkit.runs.files import EvaluationLog, save_atomically, write_json
from worldkit.runs.folder import check_same_settings
from worldkit.runs.schedules import Every, Ratio
from worldkit.tracking import RunLogger, check_wandb_mode

__all__ = ["DreamerRunConfig", "OnlineDreamer", "compile_loops", "run_dreamer", "sample_batch", "train_step"]


def train_step(model: RSSM, optimizer, learner: DreamerLearner, batch: dict) -> dict[str, float]:
    """One world-model update, then one actor-critic update from its posterior states."""
    with torch.enable_grad():
        losses = model.losses(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), model.hparams.grad_clip)
        optimizer.step()
    metrics = {f"model/{k}": v.item() for k, v in losses.items() if k != "states"}
    metrics.update({f"actor_critic/{k}": v for k, v in learner.train_step(losses["states"]).items()})
    return metrics


def compile_loops(model: RSSM, learner: DreamerLearner) -> None:
    """Compile the two step-by-step loops, where an update spends most of its many small kernels."""
    model.observe_sequence = torch.compile(model.observe_sequence)
    learner._imagine = torch.compile(learner._imagine)


def sample_batch(dataset: SequenceDataset, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """The windows at ``indices``, stacked into one training batch."""
    items = [dataset[int(i)] for i in indices]
    keys = ("obs", "action", "reward", "terminated", "mask")
    return {key: torch.stack([item[key] for item in items]) for key in keys}


class OnlineDreamer:
    """Dreamer's online loop in a run folder.

    Args:
        config: The recipe's settings: ``total_steps``, ``action_repeat``, ``prefill``, ``train_ratio``,
            ``batch_size``, ``sequence_length``, ``eval_every``, ``eval_episodes``, ``seed``, ``device``,
            ``precision`` (``"32"`` or ``"bf16"``), ``progress`` and ``wandb_mode``; saved as the run's config.
        env: The real env (its action repeat applied), for collecting and evaluating.
        model: The RSSM, on ``config.device``.
        learner: The actor-critic's learner on ``model``.
        store: Where the episodes go; a resumed run's episodes are already in it.
        run_dir: The run folder (``state.pt``, ``evaluations.jsonl``, metrics, pictures, checkpoints).
    """

    def __init__(self, config: Any, env: gym.Env, model: RSSM, learner: DreamerLearner, store: EpisodeStore,
                 run_dir: Path):
        self.config, self.env, self.model, self.learner, self.store = config, env, model, learner, store
        self.run_dir = Path(run_dir)
        self.model_optimizer = model.configure_optimizers()
        self.evaluate_now = Every(config.eval_every)
        self.owed = Ratio(config.train_ratio, config.batch_size * config.sequence_length, config.prefill)
        self.updates = 0
        self.seconds_before = 0.0  # wall-clock of earlier sittings (not counting time lost to a kill after a save)
        self.sitting_start = time.perf_counter()
        self.rng = np.random.default_rng([config.seed, len(store)])

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.pt"

    @property
    def env_steps(self) -> int:
        return self.store.num_steps * self.config.action_repeat

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.sitting_start

    def state_dict(self) -> dict[str, Any]:
        progress = {"updates": self.updates, "next_eval": self.evaluate_now.next, "seconds": self.seconds}
        return {"model": self.model.state_dict(), "model_optimizer": self.model_optimizer.state_dict(),
                "learner": self.learner.state_dict(), "progress": progress}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.model_optimizer.load_state_dict(state["model_optimizer"])
        self.learner.load_state_dict(state["learner"])
        progress = state["progress"]
        self.updates, self.seconds_before = progress["updates"], progress["seconds"]
        self.evaluate_now.load_state_dict({"next": progress["next_eval"]})
        self.sitting_start = time.perf_counter()

    def run(self) -> dict[str, Any]:
        """Collect, train and evaluate until ``total_steps`` env steps, then write the checkpoints,
        learning curve, open-loop picture and ``summary.json``; returns the summary."""
        config, run_dir = self.config, self.run_dir
        saved_step = None
        if self.state_file.exists():
            self.load_state_dict(torch.load(self.state_file, weights_only=True, map_location=config.device))
            print(f"resuming {run_dir} at {self.env_steps} env steps")
            saved_step = self.evaluate_now.next - 1
        self.evaluations = EvaluationLog(run_dir / "evaluations.jsonl", saved_step)
        self.logger = RunLogger(run_dir, config, mode=config.wandb_mode, name=run_dir.name)
        bar = tqdm(total=config.total_steps, initial=min(self.env_steps, config.total_steps), unit="env step",
                   desc=f"Dreamer on {self.store.env_spec}", disable=not config.progress)
        while self.env_steps < config.total_steps:
            [episode] = self._collect_episode()
            bar.update(min(episode["length"] * config.action_repeat, config.total_steps - bar.n))
            self.logger.log({"train/episode_return": episode["return"]}, step=self.env_steps)
            self._train_owed()
            if self.evaluate_now(self.env_steps) or self.env_steps >= config.total_steps:
                row = self._evaluate()
                bar.set_postfix(eval_return=f"{row['mean_return']:.0f}")
                save_atomically(self.state_dict(), self.state_file)
        bar.close()
        self.store.close()
        summary = self._write_artifacts()
        self.logger.finish()
        self.env.close()
        return summary

    def _collect_episode(self) -> list[dict]:
        """One whole episode into the store, acting with the actor on filtered states (random actions
        while prefilling). Training waits for the episode's end: the replay holds whole episodes only."""
        prefilling = self.env_steps < self.config.prefill
        policy = None if prefilling else WorldModelPolicy(self.model, self.learner.actor_critic.act)
        with torch.no_grad():
            return drive(self.env, policy, episodes=1, seeds=[self.config.seed + len(self.store)],
                         on_episode=self.store.add)

    def _train_owed(self) -> None:
        config, owed = self.config, self.owed.owed(self.env_steps)
        if self.updates >= owed:
            return
        dataset = SequenceDataset(self.store, config.sequence_length)
        while self.updates < owed:
            batch = sample_batch(dataset, self.rng.integers(len(dataset), size=config.batch_size))
            with torch.autocast(torch.device(config.device).type, torch.bfloat16, enabled=config.precision == "bf16"):
                metrics = train_step(self.model, self.model_optimizer, self.learner, batch)
            self.updates += 1
            if self.updates % 10 == 0:
                self.logger.log(metrics, step=self.env_steps)

    def _evaluate(self) -> dict:
        result = evaluate_in_real_env(self.model, partial(self.learner.actor_critic.act, deterministic=True), self.env,
                                      self.config.eval_episodes, seed=10_000 + self.config.seed)
        row = {"step": self.env_steps, "mean_return": result["mean_return"], "updates": self.updates,
               "seconds": round(self.seconds, 1)}
        self.evaluations.append(row)
        self.logger.log({"eval/mean_return": row["mean_return"]}, step=self.env_steps)
        return row

    def _write_artifacts(self) -> dict[str, Any]:
        run_dir, rows = self.run_dir, self.evaluations.rows
        summary = {"env_steps": self.env_steps, "updates": self.updates,
                   "wall_clock_seconds": round(self.seconds, 1),
                   "final_eval_return": rows[-1]["mean_return"] if rows else None}
        for part, module in (("world_model", self.model), ("actor_critic", self.learner.actor_critic)):
            self.logger.log_checkpoint(save_pretrained(module, run_dir / "checkpoints" / part, metrics=summary),
                                       f"{run_dir.name}-{part}".replace("_", "-"), summary)
        if rows:
            from worldkit.plots import learning_curves

            curve = ([row["step"] for row in rows], [row["mean_return"] for row in rows])
            learning_curves({"Dreamer (real evaluation)": [curve]}, run_dir / "learning_curve.png",
                            title=f"Dreamer on {self.store.env_spec}")
            self.logger.log_image("learning_curve", run_dir / "learning_curve.png")
        if open_loop_picture(self.model, self.store.episode(-1), run_dir / "open_loop.png"):
            self.logger.log_image("open_loop", run_dir / "open_loop.png")
        write_json(run_dir / "summary.json", summary)
        return summary


@dataclass
class DreamerRunConfig:
    """Online Dreamer (RSSM + actor-critic in imagination) on a dm-control task."""

    env: str = "dmc:walker-walk"
    obs: Literal["state", "pixels"] = "state"
    total_steps: int = 100_000
    """env steps (action repeats included), DreamerV3's 100k benchmark budget"""
    action_repeat: int = 2
    prefill: int = 5_000
    """env steps of random actions before training starts"""
    train_ratio: float = 512.0
    """replayed steps per env step, action repeats counted (so with a repeat of 2, 256 here replays 512
    steps per policy step): updates = env steps * ratio / (batch * length)"""
    batch_size: int = 16
    sequence_length: int = 64
    size: str = "S"
    """RSSM size preset: tiny, XS, S, M, L, XL, v1"""
    deter: int | None = None
    """GRU units; with stoch, classes and hidden, sizes a model between presets (None: the preset's)"""
    stoch: int | None = None
    """number of categoricals (or Gaussian dimensions) of the latent (None: the preset's)"""
    classes: int | None = None
    """classes per categorical (None: the preset's)"""
    hidden: int | None = None
    """the RSSM's MLP units (None: the preset's)"""
    latent: Literal["categorical", "gaussian"] = "categorical"
    model_lr: float = 1e-4
    eval_every: int = 10_000
    """env steps between real evaluations (and saved states)"""
    eval_episodes: int = 1
    seed: int = 0
    run_dir: str = "runs/dreamer_dmc_walker"
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    progress: bool = True
    torch_threads: int = 1
    device: str = "cpu"
    """where the RSSM and actor-critic train: cpu or cuda"""
    precision: Literal["32", "bf16"] = "32"
    """bf16: updates under bfloat16 autocast (weights, distributions and losses stay float32), as
    DreamerV3 trains; 2-3x faster updates on CPUs with AVX512-BF16 or AMX"""
    compile: bool = False
    """torch.compile the RSSM's filtering loop and the imagination loop: minutes of compiling at the
    start, then fewer, fused kernels per update (the tiny model's updates ~1.4x faster on this CPU)"""
    dreamer: DreamerConfig = field(default_factory=lambda: DreamerConfig(hidden=512, layers=2))

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"size must be one of {sorted(PRESETS)}, got {self.size!r}")
        for name in ("total_steps", "action_repeat", "batch_size", "sequence_length", "eval_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("deter", "stoch", "classes", "hidden"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (or left to the preset), got {getattr(self, name)}")
        if self.prefill < 0:
            raise ValueError(f"prefill must be >= 0, got {self.prefill}")
        if self.train_ratio <= 0:
            raise ValueError(f"train_ratio must be > 0, got {self.train_ratio}")


def run_dreamer(config: DreamerRunConfig) -> dict:
    """Build the env, replay, RSSM and actor-critic that ``config`` names (refusing bad settings before
    any work) and run :class:`OnlineDreamer` in ``config.run_dir``; its summary."""
    check_wandb_mode(config.wandb_mode)
    spec = parse_spec(config.env, config.obs)  # an unknown id fails here, before anything runs
    if spec.family != "dmc":
        raise ValueError(f"online Dreamer runs dm-control tasks (dmc:domain-task), not {spec}")
    torch.set_num_threads(config.torch_threads)
    run_dir = Path(config.run_dir)
    check_same_settings(run_dir, config, RESUMABLE_CHANGES)
    torch.manual_seed(config.seed)
    env = make_env(spec, action_repeat=config.action_repeat)
    store = EpisodeStore.create(run_dir / "replay", str(spec), env.observation_space, env.action_space)
    model = RSSM(env.observation_space, env.action_space, size=config.size, latent=config.latent, deter=config.deter,
                 stoch=config.stoch, classes=config.classes, hidden=config.hidden, lr=config.model_lr)
    model.env_spec = str(spec)
    model.to(config.device)
    learner = DreamerLearner(model, config.dreamer)
    if config.compile:
        compile_loops(model, learner)
    return OnlineDreamer(config, env, model, learner, store, run_dir).run()


RESUMABLE_CHANGES = {"total_steps", "eval_every", "eval_episodes", "run_dir", "wandb_mode", "progress", "torch_threads",
                      "device", "precision", "compile"}
"""settings a killed run may be resumed with changed"""
