"""Dreamer online, on any env: collect with one or several envs, train the world model and the
actor-critic at a replay ratio, evaluate in the real env, and resume after a kill from the last
saved state.

The episodes live in an :class:`~worldkit.data.EpisodeStore` (they survive a crash); every
``eval_every`` env steps the actor is scored and the whole training state is saved atomically.
At the end the world model and actor are saved together as one agent
(:class:`~worldkit.controllers.dreamer.DreamerAgent`), and the last evaluation episode as a video.
"""

import argparse
import copy
import dataclasses
import importlib
import sys
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
from worldkit.config import parse_config
from worldkit.controllers.dreamer import (
    DreamerAgent,
    DreamerConfig,
    DreamerLearner,
    average_gradients,
)
from worldkit.data import EpisodeStore
from worldkit.data.datasets import SequenceDataset
from worldkit.data.driver import Driver
from worldkit.dream.driver import WorldModelPolicy, evaluate_in_real_env
from worldkit.dream.open_loop import open_loop_picture
from worldkit.envs import make_env, make_vector_env, parse_spec
from worldkit.models.rssm import PRESETS, RSSM
from worldkit.runs.files import EvaluationLog, save_atomically, write_json
from worldkit.runs.folder import RunDirInUseError, check_same_settings, hold_run_dir
from worldkit.runs.schedules import Every, Ratio
from worldkit.tracking import RunLogger, TrackingOptions
from worldkit.video import FrameRecorder, write_video

__all__ = ["DREAMER_PRESETS", "DreamerRunConfig", "OnlineDreamer", "compile_loops", "parse_dreamer_config",
           "run_dreamer", "sample_batch", "train_step"]

PIXEL_SIZE = (64, 64)
"""frames the RSSM's CNN reads (height and width divisible by 16), for every family"""


def train_step(model: RSSM, optimizer, learner: DreamerLearner, batch: dict) -> dict[str, float]:
    """One world-model update, then one actor-critic update from its posterior states."""
    with torch.enable_grad():
        losses = model.losses(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if learner.average is not None:  # data-parallel: every process steps with the mean gradient
            average_gradients(model.parameters(), learner.average)
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
    batch = {key: torch.stack([item[key] for item in items]) for key in ("action", "reward", "terminated", "mask")}
    if isinstance(items[0]["obs"], dict):  # a Dict observation: one batch per part
        batch["obs"] = {key: torch.stack([item["obs"][key] for item in items]) for key in items[0]["obs"]}
    else:
        batch["obs"] = torch.stack([item["obs"] for item in items])
    return batch


class OnlineDreamer:
    """Dreamer's online loop in a run folder.

    Args:
        config: The run's settings (:class:`DreamerRunConfig`, its ``auto`` values resolved); saved
            as the run's config.
        envs: The vector env that collects (its action repeat applied).
        eval_env: The env the actor is scored in.
        model: The RSSM, on ``config.device``.
        learner: The actor-critic's learner on ``model``.
        store: Where the episodes go; a resumed run's episodes are already in it.
        run_dir: The run folder (``state.pt``, ``evaluations.jsonl``, metrics, pictures, checkpoints).
    """

    def __init__(self, config: "DreamerRunConfig", envs: gym.vector.VectorEnv, eval_env: gym.Env, model: RSSM,
                 learner: DreamerLearner, store: EpisodeStore, run_dir: Path, fabric: Any = None):
        self.config, self.envs, self.eval_env, self.model, self.learner, self.store = \
            config, envs, eval_env, model, learner, store
        self.run_dir = Path(run_dir)
        self.fabric = fabric
        self.rank = 0 if fabric is None else fabric.global_rank
        self.main = self.rank == 0  # evaluates, saves and reports; every process collects and trains
        self.model_optimizer = model.configure_optimizers()
        self.evaluate_now = Every(config.eval_every)
        self.owed = Ratio(config.train_ratio, config.batch_size * config.sequence_length, config.prefill)
        self.updates = 0
        self.seconds_before = 0.0  # wall-clock before the last resume (not counting time lost to a kill after a save)
        self.sitting_start = time.perf_counter()
        self.rng = np.random.default_rng([config.seed, self.rank, len(store)])
        self.driver = Driver(envs, seed=config.seed + 100_000 * self.rank + len(store))
        self.policy = WorldModelPolicy(model, learner.actor_critic.act)

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.pt"

    @property
    def env_steps(self) -> int:
        """Env steps of every process's finished episodes (the same number in each process)."""
        local = self.store.num_steps * self.config.action_repeat
        if self.fabric is None or self.fabric.world_size == 1:
            return local
        return int(self.fabric.all_reduce(torch.tensor(float(local)), reduce_op="sum").item())

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
        """Collect, train and evaluate until ``total_steps`` env steps, then write the agent,
        learning curve, open-loop picture, evaluation video and ``summary.json``; returns the summary."""
        config, run_dir = self.config, self.run_dir
        saved_step = None
        steps = self.env_steps  # (every process asks: with several, it is a collective call)
        if self.state_file.exists():
            self.load_state_dict(torch.load(self.state_file, weights_only=True, map_location=config.device))
            if self.main:
                print(f"resuming {run_dir} at {steps} env steps")
            saved_step = self.evaluate_now.next - 1
        if self.main:
            self.evaluations = EvaluationLog(run_dir / "evaluations.jsonl", saved_step)
        logs = run_dir if self.main else run_dir / f"rank{self.rank}"  # each process's training episodes
        self.logger = RunLogger(logs, config, mode=config.wandb_mode if self.main else "disabled", name=run_dir.name)
        bar = tqdm(total=config.total_steps, initial=min(steps, config.total_steps), unit="env step",
                   desc=f"Dreamer on {self.store.env_spec}", disable=not (config.progress and self.main))
        done = self._done(steps)
        while not done:
            for episode in self._collect(steps):
                self.logger.log({"train/episode_return": episode["return"]}, step=steps)
            steps, before = self.env_steps, steps
            bar.update(max(0, min(steps, config.total_steps) - before))
            self._train_owed(steps)
            done = self._done(steps)
            if self.evaluate_now(steps) or done:
                if self.main:
                    row = self._evaluate(steps, video=done and config.video)
                    bar.set_postfix(eval_return=f"{row['mean_return']:.0f}")
                    save_atomically(self.state_dict(), self.state_file)
        bar.close()
        self.store.close()
        checksums = self._weight_checksums()
        summary = self._write_artifacts(steps, checksums) if self.main else {}
        self.logger.finish()
        self.envs.close()
        self.eval_env.close()
        return summary

    def _done(self, steps: int) -> bool:
        """Every env step owed is taken, or the wall-clock budget (``hours``) is spent; with several
        processes, the first one's clock decides for all."""
        if steps >= self.config.total_steps:
            return True
        if self.config.hours is None:
            return False
        late = self.seconds >= self.config.hours * 3600
        if self.fabric is not None and self.fabric.world_size > 1:
            late = bool(self.fabric.broadcast(late, src=0))
        return late

    def _weight_checksums(self) -> list[float]:
        """One number per process summing its weights: equal when the processes trained as one."""
        total = sum(float(p.detach().double().sum()) for p in [*self.model.parameters(), *self.learner.actor_critic.parameters()])
        if self.fabric is None or self.fabric.world_size == 1:
            return [total]
        return self.fabric.all_gather(torch.tensor(total, dtype=torch.float64)).flatten().tolist()

    def _collect(self, steps: int) -> list[dict]:
        """Step every env ``collect_steps`` times, acting with the actor on filtered states (random
        actions while prefilling); the episodes that finished go to the store. Episodes still
        running go on in the next call; training waits for their end, as the replay holds whole
        episodes only."""
        policy = None if steps < self.config.prefill else self.policy
        with torch.no_grad():
            return self.driver.run(policy, rounds=self.config.collect_steps, on_episode=self.store.add)

    def _train_owed(self, steps: int) -> None:
        config, owed = self.config, self.owed.owed(steps)
        if self.updates >= owed:
            return
        dataset = SequenceDataset(self.store, config.sequence_length)
        while self.updates < owed:
            batch = sample_batch(dataset, self.rng.integers(len(dataset), size=config.batch_size))
            with torch.autocast(torch.device(config.device).type, torch.bfloat16, enabled=config.precision == "bf16"):
                metrics = train_step(self.model, self.model_optimizer, self.learner, batch)
            self.updates += 1
            if self.updates % 10 == 0:
                self.logger.log(metrics, step=steps)

    def _evaluate(self, steps: int, video: bool = False) -> dict:
        frames: list[np.ndarray] = []
        record = FrameRecorder(self.eval_env, frames) if video else None
        result = evaluate_in_real_env(self.model, partial(self.learner.actor_critic.act, deterministic=True),
                                      record or self.eval_env, self.config.eval_episodes,
                                      seed=10_000 + self.config.seed)
        row = {"step": steps, "mean_return": result["mean_return"], "std_return": result["std_return"],
               "episodes": result["episodes"], "updates": self.updates, "seconds": round(self.seconds, 1)}
        if parse_spec(self.store.env_spec).family == "miniworld":  # tasks with a goal to reach
            row["success_rate"] = result["success_rate"]
        self.evaluations.append(row)
        self.logger.log({"eval/mean_return": row["mean_return"]}, step=steps)
        if frames:
            write_video(frames, self.run_dir / "evaluation.mp4", fps=30)
        return row

    def _write_artifacts(self, steps: int, checksums: list[float]) -> dict[str, Any]:
        run_dir, rows = self.run_dir, self.evaluations.rows
        summary = {"env": self.store.env_spec, "env_steps": steps, "updates": self.updates,
                   "wall_clock_seconds": round(self.seconds, 1), "stopped_by": "steps" if steps >= self.config.total_steps
                   else "hours",
                   "final_eval_return": rows[-1]["mean_return"] if rows else None,
                   "processes": len(checksums), "weight_checksums": checksums}
        agent = DreamerAgent.of(self.model, self.learner.actor_critic, self.config.action_repeat)
        for part, module in (("agent", agent), ("world_model", self.model)):
            self.logger.log_checkpoint(save_pretrained(module, run_dir / "checkpoints" / part, metrics=summary),
                                       f"{run_dir.name}-{part}".replace("_", "-"), summary)
        if rows:
            from worldkit.plots import learning_curves

            curve = ([row["step"] for row in rows], [row["mean_return"] for row in rows])
            learning_curves({"Dreamer (real evaluation)": [curve]}, run_dir / "learning_curve.png",
                            title=f"Dreamer on {self.store.env_spec}")
            self.logger.log_image("learning_curve", run_dir / "learning_curve.png")
        if len(self.store) and open_loop_picture(self.model, self.store.episode(-1), run_dir / "open_loop.png"):
            self.logger.log_image("open_loop", run_dir / "open_loop.png")
        write_json(run_dir / "summary.json", summary)
        return summary


@dataclass
class DreamerRunConfig(TrackingOptions):
    """Online Dreamer (RSSM + actor-critic in imagination) on any worldkit env."""

    env: str = "dmc:walker-walk"
    """any worldkit env id: gym:Walker2d-v4, dmc:walker-walk, miniworld:Sidewalk, or any registered gymnasium id"""
    env_module: str | None = None
    """a module to import first, which registers the env with gymnasium (e.g. mypkg.envs)"""
    obs: Literal["state", "pixels"] | None = None
    """observations: state or pixels (64x64 frames); None: the env's own (pixels for MiniWorld)"""
    preset: Literal["auto", "cpu", "dreamerv3", "tiny"] = "auto"
    """settings to start from (flags override them): cpu (a tiny model at replay ratio 256, what a
    2-core CPU trains in hours), dreamerv3 (DreamerV3's size S, for a GPU), tiny (smoke tests);
    auto: dreamerv3 where a GPU is found, cpu elsewhere"""
    envs: int = 1
    """environments collecting at once; the replay ratio counts every env's steps"""
    vectorization: Literal["auto", "sync", "async"] = "auto"
    """async runs each env in its own process (auto: async for several pixel envs, sync otherwise)"""
    collect_steps: int = 16
    """steps of every env between two rounds of training"""
    total_steps: int = 100_000
    """env steps (action repeats included), DreamerV3's 100k benchmark budget"""
    hours: float | None = None
    """a wall-clock budget, counted over resumes (up to each one's last saved evaluation): once
    spent, the run ends as it would at total_steps (final evaluation, agent, pictures); None: no limit"""
    action_repeat: int | None = None
    """env steps each action is held for (None: 2 on dm-control, as Dreamer does; 1 elsewhere)"""
    prefill: int = 5_000
    """env steps of random actions before training starts"""
    train_ratio: float = 256.0
    """replayed steps per env step, action repeats counted (so with a repeat of 2, 256 here replays 512
    steps per policy step, DreamerV3's ratio): updates = env steps * ratio / (batch * length)"""
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
    decode_fraction: float = 1.0
    """share of each replayed sequence's steps the decoder reconstructs (drawn anew each update); below
    1 it cuts the largest cost of a pixel update"""
    eval_every: int = 10_000
    """env steps between real evaluations (and saved states)"""
    eval_episodes: int = 1
    video: bool = True
    """save the final evaluation's episodes as evaluation.mp4"""
    seed: int = 0
    run_dir: str = "runs/dreamer"
    torch_threads: int = 1
    device: str = "auto"
    """where the RSSM and actor-critic train: auto (the GPU if there is one), cpu, cuda, cuda:1, ..."""
    devices: int = 1
    """processes training as one (data-parallel, through Lightning Fabric): GPUs, or CPU processes"""
    num_nodes: int = 1
    """machines, each running ``devices`` processes (launched as Lightning Fabric expects)"""
    precision: Literal["auto", "32", "bf16"] = "32"
    """bf16: updates under bfloat16 autocast (weights, distributions and losses stay float32), as
    DreamerV3 trains; auto: bf16 on a GPU and on CPUs with bfloat16 instructions (AVX512-BF16, AMX)"""
    compile: bool = False
    """torch.compile the RSSM's filtering loop and the imagination loop: minutes of compiling at the
    start, then fewer, fused kernels per update (the tiny model's updates ~1.4x faster on a CPU)"""
    dreamer: DreamerConfig = field(default_factory=lambda: DreamerConfig(hidden=512, layers=2))

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"size must be one of {sorted(PRESETS)}, got {self.size!r}")
        for name in ("total_steps", "batch_size", "sequence_length", "eval_every", "eval_episodes", "envs",
                     "collect_steps", "torch_threads", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("deter", "stoch", "classes", "hidden", "action_repeat"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (or left to its default), got {getattr(self, name)}")
        if self.prefill < 0:
            raise ValueError(f"prefill must be >= 0, got {self.prefill}")
        if self.train_ratio <= 0:
            raise ValueError(f"train_ratio must be > 0, got {self.train_ratio}")
        if self.hours is not None and self.hours <= 0:
            raise ValueError(f"hours must be > 0 (or None for no limit), got {self.hours}")
        if not 0 < self.decode_fraction <= 1:
            raise ValueError(f"decode_fraction must be in (0, 1], got {self.decode_fraction}")


DREAMER_PRESETS: dict[str, dict[str, Any]] = {
    "dreamerv3": {"size": "S", "train_ratio": 256.0, "batch_size": 16, "sequence_length": 64, "model_lr": 1e-4,
                  "precision": "auto", "dreamer": {"hidden": 512, "layers": 2}},
    "cpu": {"size": "tiny", "train_ratio": 256.0, "batch_size": 16, "sequence_length": 32, "model_lr": 3e-4,
            "eval_episodes": 2, "precision": "auto", "compile": True,
            "dreamer": {"hidden": 128, "layers": 2, "actor_lr": 1e-4, "critic_lr": 1e-4, "starts": 256}},
    "tiny": {"size": "tiny", "hidden": 32, "train_ratio": 16.0, "batch_size": 4, "sequence_length": 16,
             "total_steps": 5_000, "prefill": 1_000, "eval_every": 2_500, "collect_steps": 8,
             "dreamer": {"hidden": 32, "layers": 1}},
}
"""each preset's settings over :class:`DreamerRunConfig`'s defaults ("dreamer" over DreamerConfig's)"""


def preset_config(cls: type, preset: str, device: str = "auto", **overrides: Any) -> Any:
    """``cls`` (a :class:`DreamerRunConfig`) with ``preset``'s settings; ``auto`` picks dreamerv3 on
    a machine with a GPU (``device``'s, if given) and cpu elsewhere."""
    if preset == "auto":
        preset = "dreamerv3" if resolve_device(device).startswith("cuda") else "cpu"
    if preset not in DREAMER_PRESETS:
        raise ValueError(f"unknown Dreamer preset {preset!r}; known: auto, {', '.join(DREAMER_PRESETS)}")
    settings = dict(DREAMER_PRESETS[preset])
    dreamer = dataclasses.replace(DreamerConfig(hidden=512, layers=2), **settings.pop("dreamer", {}))
    return cls(**{**settings, "dreamer": dreamer, "preset": preset, **overrides})


def parse_dreamer_config(cls: type, args: "list[str] | None" = None) -> Any:
    """The command line's config: flags applied over the chosen ``--preset`` (read first, so that
    ``--help`` shows the preset's values)."""
    reader = argparse.ArgumentParser(add_help=False)
    reader.add_argument("--preset", default="auto")
    reader.add_argument("--device", default="auto")
    known = reader.parse_known_args(sys.argv[1:] if args is None else args)[0]
    try:
        default = preset_config(cls, known.preset, known.device)
    except ValueError:
        return parse_config(cls, args)  # the parser names the unknown preset
    return parse_config(cls, args, default=default)


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` where a GPU is found, else ``cpu``; an unusable device is refused here."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device={device}, but torch finds no GPU here: use --device=cpu (or auto)")
    if not device.startswith(("cpu", "cuda", "mps")):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def _native_bf16(device: str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (emulated bfloat16 is slower than float32)."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolved(config: DreamerRunConfig) -> DreamerRunConfig:
    """``config`` with its automatic choices made for this machine and env."""
    device = resolve_device(config.device)
    precision = config.precision if config.precision != "auto" else ("bf16" if _native_bf16(device) else "32")
    return dataclasses.replace(config, device=device, precision=precision)


def run_dreamer(config: DreamerRunConfig) -> dict:
    """Build the envs, replay, RSSM and actor-critic that ``config`` names (refusing bad settings before
    any work) and run :class:`OnlineDreamer` in ``config.run_dir``; its summary.

    With ``devices`` > 1 (or ``num_nodes`` > 1) Lightning Fabric starts one process per device:
    each collects with its own envs into its own replay, and every update averages the
    gradients of all of them (data-parallel), so all processes hold the same weights."""
    import lightning as L

    config.start_reporting()
    if config.env_module is not None:
        try:
            importlib.import_module(config.env_module)
        except ImportError as error:
            raise ValueError(f"--env_module={config.env_module} could not be imported ({error}): give a module "
                             "on the Python path that registers your env with gymnasium") from error
    spec = parse_spec(config.env, config.obs)  # an unknown id fails here, before anything runs
    run_config = resolved(config)
    repeat = run_config.action_repeat or (2 if spec.family == "dmc" else 1)
    run_config = dataclasses.replace(run_config, action_repeat=repeat)
    run_dir = Path(config.run_dir)
    check_same_settings(run_dir, run_config, RESUMABLE_CHANGES)
    accelerator = "cuda" if run_config.device.startswith("cuda") else "cpu"
    parallel = config.devices > 1 or config.num_nodes > 1
    fabric = L.Fabric(accelerator=accelerator, devices=config.devices if parallel or accelerator == "cpu" else [
        torch.device(run_config.device).index or 0], num_nodes=config.num_nodes,
        strategy="ddp" if parallel else "auto")
    fabric.launch()  # with several devices: this process becomes rank 0 and starts the others
    if parallel and accelerator == "cuda":
        run_config = dataclasses.replace(run_config, device=str(fabric.device))
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    size = PIXEL_SIZE if spec.obs == "pixels" else None
    eval_env = _make_eval_env(spec, repeat, size, video=config.video)
    _check_dreamer_spaces(spec, eval_env)
    if fabric.is_global_zero:
        try:
            hold_run_dir(run_dir)
        except RunDirInUseError:
            eval_env.close()
            raise
    vectorization = config.vectorization
    if vectorization == "auto":
        vectorization = "async" if config.envs > 1 and spec.obs == "pixels" and config.env_module is None else "sync"
    envs = make_vector_env(spec, config.envs, vectorization=vectorization, action_repeat=repeat, size=size)
    replay = run_dir / ("replay" if fabric.global_rank == 0 else f"replay-rank{fabric.global_rank}")
    store = EpisodeStore.create(replay, str(spec), eval_env.observation_space, eval_env.action_space)
    model = RSSM(eval_env.observation_space, eval_env.action_space, size=config.size, latent=config.latent,
                 deter=config.deter, stoch=config.stoch, classes=config.classes, hidden=config.hidden,
                 lr=config.model_lr, decode_fraction=config.decode_fraction)
    model.env_spec = str(spec)
    model.to(run_config.device)
    learner = DreamerLearner(model, config.dreamer)
    if fabric.is_global_zero and not (run_dir / "state.pt").exists():
        print(budget_line(run_config, spec, model, learner))
    if fabric.world_size > 1:
        learner.average = partial(fabric.all_reduce, reduce_op="mean")
    if config.compile:
        compile_loops(model, learner)
    torch.manual_seed(config.seed + 1_000 * fabric.global_rank)  # each process dreams its own samples
    return OnlineDreamer(run_config, envs, eval_env, model, learner, store, run_dir, fabric).run()


def _make_eval_env(spec, repeat: int, size: "tuple[int, int] | None", video: bool) -> gym.Env:
    """The env the actor is scored in; a state env renders frames for the video where it can."""
    env = make_env(spec, action_repeat=repeat, size=size)
    if spec.obs == "state" and video and "rgb_array" in env.metadata.get("render_modes", []):
        env.close()  # made again, able to render its frames
        return make_env(spec, action_repeat=repeat, size=(128, 128), render_mode="rgb_array")
    return env


def _check_dreamer_spaces(spec, env: gym.Env) -> None:
    space = env.observation_space
    parts = list(space.spaces.values()) if isinstance(space, gym.spaces.Dict) else [space]
    if all(isinstance(part, gym.spaces.Box) and (len(part.shape) == 1 or (len(part.shape) == 3 and part.dtype == np.uint8))
           for part in parts):
        return
    env.close()
    raise ValueError(f"{spec} observes {space}; Dreamer here takes a flat state vector, (H, W, 3) uint8 frames or a "
                     "Dict of them: flatten the observation with gymnasium's FlattenObservation in your env, or "
                     "pass --obs=pixels")


def budget_line(config: DreamerRunConfig, spec, model: RSSM, learner: DreamerLearner) -> str:
    """What the run will do and about how long its updates take on this machine, from three timed
    updates of a copy (uncompiled, so a compiled run is faster)."""
    updates = int(max(0, config.total_steps - config.prefill) * config.train_ratio
                  / (config.batch_size * config.sequence_length))
    model_copy, learner_copy = copy.deepcopy((model, learner))
    optimizer = model_copy.configure_optimizers()
    space, batch, length = model.observation_space, config.batch_size, config.sequence_length
    parts = space.spaces if isinstance(space, gym.spaces.Dict) else {"": space}
    zeros = {key: torch.zeros(batch, length + 1, *part.shape, dtype=torch.uint8 if part.dtype == np.uint8 else torch.float32)
             for key, part in parts.items()}
    obs = zeros if isinstance(space, gym.spaces.Dict) else zeros[""]
    actions = torch.as_tensor(np.stack([[model.action_space.sample() for _ in range(length)] for _ in range(batch)]))
    fake = {"obs": obs, "action": actions, "reward": torch.zeros(batch, length),
            "terminated": torch.zeros(batch, length, dtype=torch.bool), "mask": torch.ones(batch, length, dtype=torch.bool)}
    seconds = []
    with torch.random.fork_rng():
        for _ in range(3):
            start = time.perf_counter()
            with torch.autocast(torch.device(config.device).type, torch.bfloat16, enabled=config.precision == "bf16"):
                train_step(model_copy, optimizer, learner_copy, fake)
            seconds.append(time.perf_counter() - start)
    per_update = float(np.median(seconds[1:]))
    return (f"Dreamer ({config.preset}) on {spec}: {config.total_steps:,} env steps with {config.envs} env(s), "
            f"{updates:,} updates of {batch} x {length} on {config.device} ({config.precision}); "
            f"about {updates * per_update / 3600:.1f} h of updates here ({per_update:.3f} s each"
            f"{', before compiling' if config.compile else ''})"
            + (f"; it stops after {config.hours:g} h" if config.hours is not None else ""))


RESUMABLE_CHANGES = {"total_steps", "hours", "eval_every", "eval_episodes", "run_dir", "wandb_mode", "progress", "torch_threads",
                      "device", "precision", "compile", "video", "vectorization", "logger", "verbose"}
"""settings a killed run may be resumed with changed"""
