"""World-model-assisted PPO on MuJoCo, with plain PPO and PPO+ICM as baselines.

    python recipes/wm_ppo_walker.py                       # WM-PPO, Walker2d-v4, 1M steps
    python recipes/wm_ppo_walker.py --preset=paper        # the paper draft's settings (alpha = 0.01)
    python recipes/wm_ppo_walker.py --method=ppo --env=HalfCheetah-v4 --seeds 1 2 3
    python recipes/wm_ppo_walker.py --help                # every flag

PPO's hyperparameters follow the env (``--ppo_preset=auto``): RL Zoo's tuned settings on
HalfCheetah, CleanRL's elsewhere.

Each seed writes to ``<run_dir>/<env>-<method>-seed<k>/``: metrics (JSONL/CSV), evaluations,
learning curves, the policy and world model as checkpoints, a gait filmstrip and a t-SNE map of
latents coloured by gait phase. A killed run started again with the same flags resumes from its
last saved state.
"""

import argparse
import copy
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from worldkit.checkpoints import save_pretrained
from worldkit.cli import run_command
from worldkit.config import parse_config
from worldkit.controllers import PPO, PPO_PRESETS, PPOConfig
from worldkit.controllers.curiosity_hook import ICMHook
from worldkit.controllers.ppo import ppo_preset_for
from worldkit.controllers.wm_ppo import WorldModelAssist
from worldkit.envs import make_env, parse_spec
from worldkit.models import LatentMLPWorldModel
from worldkit.plots import filmstrip, latent_map, learning_curves
from worldkit.runs import open_ppo_run, read_jsonl, train_ppo_in_run
from worldkit.tracking import TrackingOptions

PRESETS: dict[str, dict] = {
    "default": {"latent_dim": 32, "alpha": 0.0, "beta": 1.0, "recon_weight": 1.0, "clip_apart": True},
    "paper": {"latent_dim": 32, "alpha": 0.01, "beta": 1.0, "recon_weight": 1.0, "clip_apart": False},
}
"""The world-model settings of each --preset; flags given beside it override them."""


@dataclass
class Config(TrackingOptions):
    """World-model-assisted PPO and its baselines on a state-based MuJoCo task.

    --preset=default trains the world model as an auxiliary loss on PPO's encoder with no
    intrinsic reward (alpha = 0), its gradients clipped apart from the policy's. --preset=paper is the paper draft's setting (z = 32,
    alpha = 0.01, beta = 1, lambda = 1). The draft's Table 1 (5 seeds) gives PPO 4130 +- 320
    and PPO+WM 4660 +- 250 on Walker2d-v4, 5430 +- 300 vs 4920 +- 410 on HalfCheetah-v4; measured
    here, its intrinsic reward roughly halves PPO's return, and alpha = 0 is level with PPO
    (docs/benchmarks.md).
    """

    env: str = "Walker2d-v4"
    """any state-based gymnasium MuJoCo id (HalfCheetah-v4, Hopper-v4, ...)"""
    method: Literal["wm_ppo", "ppo", "ppo_icm"] = "wm_ppo"
    preset: Literal["default", "paper"] = "default"
    """world-model settings: default (alpha = 0) or paper (the paper draft's, alpha = 0.01)"""
    total_steps: int = 1_000_000
    """env steps per seed"""
    seeds: tuple[int, ...] = (1,)
    latent_dim: int = 32
    """z, the world model's latent size"""
    alpha: float = 0.0
    """weight of the intrinsic reward alpha * ||z' - z'_hat||^2 (also ICM's)"""
    beta: float = 1.0
    """weight of the world model's loss in PPO's loss"""
    recon_weight: float = 1.0
    """lambda, weight of the reconstruction term in L_WM"""
    policy_input: Literal["z", "z_and_s"] = "z"
    """what the policy and value read"""
    clip_apart: bool = False
    """clip the world model's gradient norm apart from the policy's (jointly, the world model's
    larger gradients shrink every policy step; --preset=default sets it)"""
    wm_epochs: int | None = None
    """in how many of PPO's epochs per update the world model learns (None: all; 1 cuts its cost
    the most)"""
    world_model: str | None = None
    """a saved world model (a folder, or a name in checkpoints/ such as walker2d-wm) to use as a
    frozen encoder instead of training one (wm_ppo only); it normalises raw observations itself,
    so PPO's observation normalisation is turned off"""
    eval_every: int = 100_000
    """env steps between deterministic evaluations (and saved states)"""
    eval_episodes: int = 5
    run_dir: str = "runs/wm_ppo"
    ppo_preset: Literal["auto", "cleanrl", "rl_zoo_halfcheetah"] = "auto"
    """PPO's hyperparameters to start from (auto: chosen by env, see ppo_preset_for); --ppo.* flags
    override them"""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO's hyperparameters (total_steps and seed are set from the flags above)"""

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.eval_every < 1 or self.eval_episodes < 1:
            raise ValueError("latent_dim, eval_every and eval_episodes must be positive")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.world_model is not None and self.method != "wm_ppo":
            raise ValueError(f"--world_model is for --method=wm_ppo, not {self.method}")


def main(config: Config) -> list[dict]:
    config.start_reporting()
    spec = parse_spec(config.env)  # an unknown id fails here, before anything runs
    frozen = None if config.world_model is None else LatentMLPWorldModel.from_pretrained(config.world_model)
    if frozen is not None and frozen.env_spec not in (None, str(spec)):
        raise ValueError(f"--world_model={config.world_model} was trained on {frozen.env_spec}, not {spec}")
    return [run_seed(config, spec, seed, frozen) for seed in config.seeds]


def run_seed(config: Config, spec, seed: int, frozen: LatentMLPWorldModel | None = None) -> dict:
    run_dir, ppo_config, envs = open_ppo_run(config, spec, seed, _RESUMABLE_CHANGES)
    observation_space, action_space = envs.single_observation_space, envs.single_action_space
    discrete = isinstance(action_space, gym.spaces.Discrete)
    obs_dim, action_dim = observation_space.shape[0], int(action_space.n) if discrete else action_space.shape[0]
    hooks, world_model = [], None
    if config.method == "wm_ppo" and frozen is not None:
        sizes = (frozen.hparams.obs_dim, frozen.hparams.action_dim)
        if frozen.env_spec not in (None, str(spec)):
            envs.close()
            raise ValueError(f"--world_model={config.world_model} was trained on {frozen.env_spec}, not {spec}")
        if sizes != (obs_dim, action_dim) or frozen.hparams.discrete_actions != discrete:
            envs.close()
            raise ValueError(f"--world_model={config.world_model} takes observations and actions of sizes {sizes}, "
                             f"but {spec} has ({obs_dim}, {action_dim})")
        world_model = copy.deepcopy(frozen)
        ppo_config = dataclasses.replace(ppo_config, normalize_obs=False)  # the model normalises raw observations
        hooks.append(WorldModelAssist(world_model, config.alpha, config.beta, config.policy_input,
                                      train_world_model=False))
    elif config.method == "wm_ppo":
        world_model = LatentMLPWorldModel(obs_dim, action_dim, config.latent_dim, recon_weight=config.recon_weight,
                                          discrete_actions=discrete)
        hooks.append(WorldModelAssist(world_model, config.alpha, config.beta, config.policy_input,
                                      clip_apart=config.clip_apart, wm_epochs=config.wm_epochs))
    elif config.method == "ppo_icm":
        if discrete:
            raise ValueError("the ICM baseline here is written for continuous actions")
        hooks.append(ICMHook(obs_dim, action_dim, eta=config.alpha))
    ppo = PPO(ppo_config, envs, hooks)

    evaluations, logger = train_ppo_in_run(ppo, spec, run_dir, config)
    summary = _write_artifacts(config, spec, run_dir, ppo, world_model, evaluations, logger)
    logger.finish()
    return summary


def _write_artifacts(config, spec, run_dir, ppo, world_model, evaluations, logger) -> dict:
    """Checkpoints, pictures and the run's summary, once training has finished."""
    history = read_jsonl(run_dir / "metrics.jsonl")
    train = [(row["step"], row["episodic_return"]) for row in history if "episodic_return" in row]
    summary = {
        "env": str(spec), "method": config.method, "seed": ppo.config.seed, "steps": ppo.global_step,
        "final_train_return_last100": train[-1][1] if train else None,
        "final_eval_return": evaluations[-1]["mean_return"] if evaluations else None,
    }
    command_metrics = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    save_pretrained(ppo.agent, run_dir / "checkpoints" / "policy", metrics=command_metrics)
    if world_model is not None:  # saved to take raw observations, usable outside this PPO run
        assist = next(hook for hook in ppo.hooks if isinstance(hook, WorldModelAssist))
        exported = assist.export_world_model(ppo.agent)
        exported.env_spec = str(spec)
        save_pretrained(exported, run_dir / "checkpoints" / "world_model", metrics=command_metrics)
        logger.log_checkpoint(run_dir / "checkpoints" / "world_model", f"{spec.name}-world-model", command_metrics)

    curves = {"train (last 100 episodes)": [tuple(zip(*train))] if train else []}
    if evaluations:
        curves["deterministic evaluation"] = [([e["step"] for e in evaluations], [e["mean_return"] for e in evaluations])]
    logger.log_image("learning_curve", learning_curves(curves, run_dir / "learning_curve.png",
                                                       title=f"{spec.name} {config.method} seed {ppo.config.seed}"))
    frames, states = _watch_policy(ppo, spec)
    logger.log_image("gait", filmstrip(frames, run_dir / "gait_filmstrip.png", title=f"{spec.name}: {config.method}"))
    if world_model is not None:
        try:
            import sklearn  # noqa: F401 - the t-SNE map's one dependency, an optional one
        except ImportError:
            print("no latent_tsne.png: it needs scikit-learn (pip install scikit-learn)")
        else:
            logger.log_image("latent_tsne", _latent_tsne(world_model, ppo, states, run_dir / "latent_tsne.png"))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _watch_policy(ppo: PPO, spec, steps: int = 400, frames: int = 10) -> tuple[list[np.ndarray], np.ndarray]:
    """One deterministic episode: evenly spaced rendered frames and every state visited."""
    env = make_env(spec, seed=ppo.config.seed, render_mode="rgb_array", size=(160, 160))
    obs, _ = env.reset(seed=ppo.config.seed)
    states, pictures = [obs], []
    keep = set(np.linspace(0, steps - 1, frames).astype(int).tolist())
    for t in range(steps):
        if t in keep:
            pictures.append(env.render())
        obs, _, terminated, truncated, _ = env.step(ppo.agent.act(obs[None], deterministic=True)[0].numpy())
        states.append(obs)
        if terminated or truncated:
            break
    env.close()
    return pictures, np.stack(states)


def _latent_tsne(world_model, ppo: PPO, states: np.ndarray, path: Path) -> Path:
    """t-SNE of z over one episode, coloured by gait phase (the paper draft's Fig. 6).

    Phase: the angle of (d, dd/dt) for d = right thigh minus left thigh angle (observation
    entries 2 and 5 for Walker2d; back and front thigh for HalfCheetah).
    """
    from sklearn.manifold import TSNE

    with torch.no_grad():  # inside PPO the model sees PPO's normalised observations
        z = world_model.encode(ppo.agent.normalize(torch.as_tensor(states, dtype=torch.float32))).numpy()
    difference = states[:, 2] - states[:, 5]
    velocity = np.gradient(difference)
    phase = np.arctan2(velocity / (velocity.std() + 1e-8), (difference - difference.mean()) / (difference.std() + 1e-8))
    points = TSNE(perplexity=min(30, len(z) - 1), random_state=0).fit_transform(z)
    return latent_map(points, phase, path, title="t-SNE of z, coloured by gait phase", colour_label="phase (rad)", cyclic=True)


# Settings that may change when a run is continued; any other difference means another experiment.
_RESUMABLE_CHANGES = {"total_steps", "seeds", "eval_every", "eval_episodes", "run_dir", "wandb_mode", "progress",
                      "logger", "verbose"}


def parse(args: list[str] | None = None) -> Config:
    """The command line's config: flags applied over the chosen --preset and --ppo_preset (read
    first, so that flags are checked against the presets' values and --help shows them)."""
    reader = argparse.ArgumentParser(add_help=False)
    reader.add_argument("--env", default=Config.env)
    reader.add_argument("--preset", default="default")
    reader.add_argument("--ppo_preset", default="auto")
    known = reader.parse_known_args(sys.argv[1:] if args is None else args)[0]
    if known.preset not in PRESETS:
        return parse_config(Config, args)  # the parser names the unknown preset
    ppo_preset = ppo_preset_for(known.env) if known.ppo_preset == "auto" else known.ppo_preset
    if ppo_preset not in PPO_PRESETS:
        return parse_config(Config, args)
    default = Config(preset=known.preset, ppo_preset=known.ppo_preset, ppo=PPOConfig.preset(ppo_preset),
                     **PRESETS[known.preset])
    return parse_config(Config, args, default=default)


if __name__ == "__main__":
    run_command(lambda: main(parse()))  # a mistake in the flags is one line, not a traceback
