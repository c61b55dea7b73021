"""Dreamer online on dm-control walker-walk: collect, train the RSSM, train the actor-critic in
imagination, repeat.

    python recipes/dreamer_dmc_walker.py                      # state observations, 100k env steps
    python recipes/dreamer_dmc_walker.py --obs=pixels         # 64x64 frames
    python recipes/dreamer_dmc_walker.py --help               # every flag

Episodes go to ``<run_dir>/replay`` (an EpisodeStore, so they survive a crash); every
``eval_every`` env steps the actor is scored in the real env and the whole training state is
saved. A killed run started again with the same flags resumes from its last saved state (the
episodes collected since then are kept). Writes metrics (JSONL/CSV), evaluations, a learning
curve, an open-loop prediction picture, and the RSSM and actor-critic as checkpoints.
"""

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from worldkit.checkpoints import save_pretrained
from worldkit.controllers.dreamer import DreamerConfig, DreamerLearner
from worldkit.data import EpisodeStore
from worldkit.data.datasets import SequenceDataset
from worldkit.dream.open_loop import open_loop
from worldkit.dream.real import evaluate_in_real_env
from worldkit.envs import make_env, parse_spec
from worldkit.models.rssm import PRESETS, RSSM
from worldkit.runs import check_same_settings, drop_rows_after, read_jsonl, save_atomically
from worldkit.tracking import RunLogger, check_wandb_mode


@dataclass
class Config:
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


def main(config: Config) -> dict:
    check_wandb_mode(config.wandb_mode)
    spec = parse_spec(config.env, config.obs)  # an unknown id fails here, before anything runs
    if spec.family != "dmc":
        raise ValueError(f"this recipe runs dm-control tasks (dmc:domain-task), not {spec}")
    torch.set_num_threads(config.torch_threads)
    run_dir = Path(config.run_dir)
    check_same_settings(run_dir, config, _RESUMABLE_CHANGES)
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
    model_optimizer = model.configure_optimizers()
    # seconds: the run's wall-clock so far, summed over sittings (not counting time lost to a kill after a save)
    progress = {"updates": 0, "next_eval": config.eval_every, "seconds": 0.0}
    state_file = run_dir / "state.pt"
    if state_file.exists():
        saved = torch.load(state_file, weights_only=True, map_location=config.device)
        model.load_state_dict(saved["model"])
        model_optimizer.load_state_dict(saved["model_optimizer"])
        learner.load_state_dict(saved["learner"])
        progress.update(saved["progress"])
        print(f"resuming {run_dir} at {store.num_steps * config.action_repeat} env steps")
        drop_rows_after(progress["next_eval"] - 1, run_dir / "evaluations.jsonl")
    sitting_start, seconds_before = time.perf_counter(), progress["seconds"]

    def seconds() -> float:
        return seconds_before + time.perf_counter() - sitting_start

    logger = RunLogger(run_dir, config, mode=config.wandb_mode, name=run_dir.name)
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    rng = np.random.default_rng([config.seed, len(store)])
    env.action_space.seed(int(rng.integers(2**31)))
    replay_per_update = config.batch_size * config.sequence_length

    def env_steps() -> int:
        return store.num_steps * config.action_repeat

    def train_owed() -> None:
        owed = math.floor(max(0, env_steps() - config.prefill) * config.train_ratio / replay_per_update)
        if progress["updates"] >= owed:
            return
        dataset = SequenceDataset(store, config.sequence_length)
        while progress["updates"] < owed:
            batch = _batch(dataset, rng.integers(len(dataset), size=config.batch_size))
            with torch.autocast(torch.device(config.device).type, torch.bfloat16, enabled=config.precision == "bf16"):
                metrics = train_step(model, model_optimizer, learner, batch)
            progress["updates"] += 1
            if progress["updates"] % 10 == 0:
                logger.log(metrics, step=env_steps())

    bar = tqdm(total=config.total_steps, initial=min(env_steps(), config.total_steps), unit="env step",
               desc=f"Dreamer on {spec}", disable=not config.progress)
    while env_steps() < config.total_steps:
        episode = _collect_episode(env, model, learner, seed=config.seed + len(store),
                                   random=env_steps() < config.prefill)
        store.add(episode)
        bar.update(min(len(episode["action"]) * config.action_repeat, config.total_steps - bar.n))
        logger.log({"train/episode_return": float(episode["reward"].sum())}, step=env_steps())
        train_owed()
        if env_steps() >= progress["next_eval"] or env_steps() >= config.total_steps:
            result = evaluate_in_real_env(model, lambda f: learner.actor_critic.act(f, deterministic=True), env,
                                          config.eval_episodes, seed=10_000 + config.seed)
            row = {"step": env_steps(), "mean_return": result["mean_return"], "updates": progress["updates"],
                   "seconds": round(seconds(), 1)}
            evaluations.append(row)
            with open(run_dir / "evaluations.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
            logger.log({"eval/mean_return": row["mean_return"]}, step=env_steps())
            bar.set_postfix(eval_return=f"{row['mean_return']:.0f}")
            progress["next_eval"] = (env_steps() // config.eval_every + 1) * config.eval_every
            progress["seconds"] = seconds()
            save_atomically({"model": model.state_dict(), "model_optimizer": model_optimizer.state_dict(),
                             "learner": learner.state_dict(), "progress": dict(progress)}, state_file)
    bar.close()
    store.close()

    metrics = {"env_steps": env_steps(), "updates": progress["updates"], "wall_clock_seconds": round(seconds(), 1),
               "final_eval_return": evaluations[-1]["mean_return"] if evaluations else None}
    for part, module in (("world_model", model), ("actor_critic", learner.actor_critic)):
        logger.log_checkpoint(save_pretrained(module, run_dir / "checkpoints" / part, metrics=metrics),
                              f"{run_dir.name}-{part}".replace("_", "-"), metrics)
    if evaluations:
        from worldkit.plots import learning_curves

        learning_curves({"Dreamer (real evaluation)": [([e["step"] for e in evaluations],
                                                        [e["mean_return"] for e in evaluations])]},
                        run_dir / "learning_curve.png", title=f"Dreamer on {spec}")
        logger.log_image("learning_curve", run_dir / "learning_curve.png")
    _open_loop_picture(model, store, run_dir / "open_loop.png")
    logger.log_image("open_loop", run_dir / "open_loop.png")
    (run_dir / "summary.json").write_text(json.dumps(metrics, indent=2))
    logger.finish()
    env.close()
    return metrics


@torch.no_grad()
def _collect_episode(env, model, learner, *, seed: int, random: bool) -> dict:
    """One whole episode, acting with the actor on filtered states (random actions while prefilling).
    Training waits for the episode's end: the replay holds whole episodes only."""
    obs, _ = env.reset(seed=seed)
    rows = {"obs": [obs], "action": [], "reward": []}
    state = model.observe(model.initial_state(1), None, torch.as_tensor(obs)[None])
    while True:
        if random:
            action = env.action_space.sample()
        else:
            action = learner.actor_critic.act(model.features(state))[0].cpu().numpy().astype(env.action_space.dtype)
        obs, reward, terminated, truncated, _ = env.step(action)
        rows["obs"].append(obs), rows["action"].append(action), rows["reward"].append(reward)
        if terminated or truncated:
            ends = np.zeros((2, len(rows["action"])), dtype=bool)
            ends[:, -1] = terminated, truncated
            return {"obs": np.stack(rows["obs"]), "action": np.stack(rows["action"]),
                    "reward": np.asarray(rows["reward"], np.float32), "terminated": ends[0], "truncated": ends[1]}
        state = model.observe(state, torch.as_tensor(action)[None], torch.as_tensor(obs)[None])


def _batch(dataset: SequenceDataset, indices: np.ndarray) -> dict[str, torch.Tensor]:
    items = [dataset[int(i)] for i in indices]
    return {key: torch.stack([item[key] for item in items]) for key in ("obs", "action", "reward", "terminated", "mask")}


def compile_loops(model: RSSM, learner: DreamerLearner) -> None:
    """Compile the two step-by-step loops, where an update spends most of its many small kernels."""
    model.observe_sequence = torch.compile(model.observe_sequence)
    learner._imagine = torch.compile(learner._imagine)


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


def _open_loop_picture(model: RSSM, store: EpisodeStore, path: Path, context: int = 5, horizon: int = 50) -> None:
    """Real against imagined over ``horizon`` steps after filtering ``context`` real ones: frames for
    pixels, the first state dimensions otherwise."""
    from worldkit.plots import filmstrip, open_loop_states

    episode = store.episode(-1)
    if len(episode["action"]) <= context + horizon:
        return
    imagined, real, _ = open_loop(model, episode, context=context, horizon=horizon, stride=10**9)
    imagined, real = imagined[0], real[0]
    if model.pixels:
        picks = np.arange(0, horizon, 10)
        frames = [(frame * 255).round().astype(np.uint8) for frame in [*real[picks], *imagined[picks]]]
        filmstrip(frames, path, title=f"open loop, every 10th of {horizon} steps: real (left {len(picks)}), "
                                      f"imagined (right {len(picks)})")
        return
    open_loop_states(real, imagined, path, dimensions={f"state[{dim}]": dim for dim in range(min(4, real.shape[-1]))},
                     title=f"open-loop prediction, {horizon} steps after {context} filtered, real actions")


_RESUMABLE_CHANGES = {"total_steps", "eval_every", "eval_episodes", "run_dir", "wandb_mode", "progress", "torch_threads",
                      "device", "precision", "compile"}


if __name__ == "__main__":
    from worldkit.config import parse_config

    main(parse_config(Config))
