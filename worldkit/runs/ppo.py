"""PPO's run loop, shared by every PPO recipe: train in a run folder, evaluating and saving the
whole state (PPO's and its hooks') every so many steps, and resume from it after a kill."""

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from worldkit.runs.files import EvaluationLog, drop_rows_after, save_atomically
from worldkit.runs.folder import (
    RunDirInUseError,
    check_same_settings,
    hold_run_dir,
    sweep_run_dir,
)
from worldkit.runs.schedules import Every
from worldkit.tracking import RunLogger

if TYPE_CHECKING:
    from worldkit.controllers.ppo import PPOConfig
    from worldkit.envs import EnvSpec

__all__ = ["open_ppo_run", "train_ppo_in_run"]


def open_ppo_run(config: Any, spec: "EnvSpec", seed: int, resumable: Iterable[str]) -> "tuple[Path, PPOConfig, Any]":
    """A PPO recipe's run folder, PPO config and vector env for one seed, refusing before any work
    a folder that holds other settings or an env whose observations are not a flat state.

    ``config`` is the recipe's (``run_dir``, ``method``, ``total_steps``, ``ppo``).

    Returns:
        ``(run_dir, ppo_config, envs)``.
    """
    from worldkit.envs import make_vector_env
    from worldkit.spaces import require_flat_box

    run_dir = sweep_run_dir(Path(config.run_dir) / f"{spec.name}-{config.method}-seed{seed}")
    check_same_settings(run_dir, config, resumable)
    ppo_config = dataclasses.replace(config.ppo, total_steps=config.total_steps, seed=seed)
    envs = make_vector_env(spec, ppo_config.num_envs)
    try:
        require_flat_box(envs.single_observation_space, f"this recipe (on {spec})")
        hold_run_dir(run_dir)
    except (ValueError, RunDirInUseError):
        envs.close()
        raise
    return run_dir, ppo_config, envs


def train_ppo_in_run(ppo, spec, run_dir: Path, config: Any, *,
                     on_evaluation: "Callable[[dict], None] | None" = None) -> tuple[list[dict], RunLogger]:
    """Train ``ppo`` (a :class:`worldkit.controllers.PPO`) as every PPO recipe does, in ``run_dir``.

    Resumes from the folder's ``state.pt`` if there is one, logs each update, evaluates the
    deterministic policy every ``config.eval_every`` steps and after the last update
    (``config.eval_episodes`` episodes, seeds from 10,000 + the seed), and saves the state then:
    PPO's and each hook's own (:meth:`~worldkit.controllers.rollout.PPOHook.state_dict`, under its name).
    ``config`` is the recipe's: it also gives ``method``, ``wandb_mode`` and ``progress``.
    ``on_evaluation`` gets each evaluation's row, after it is written.

    Returns:
        The evaluation rows (those written before a resume too) and the open logger (the caller
        logs its artifacts and calls ``finish``). PPO's envs are closed.
    """
    from worldkit.controllers.ppo import evaluate

    state_file = run_dir / "state.pt"
    resumed = state_file.exists()
    if resumed:
        load_ppo_state(ppo, torch.load(state_file, weights_only=True))
        print(f"resuming {run_dir} at step {ppo.global_step}")
        drop_rows_after(ppo.global_step, run_dir / "metrics.jsonl")
    evaluations = EvaluationLog(run_dir / "evaluations.jsonl", ppo.global_step if resumed else None)
    logger = RunLogger(run_dir, config, mode=config.wandb_mode, name=run_dir.name, group=f"{spec.name}-{config.method}")
    evaluate_now = Every(config.eval_every, after=ppo.global_step)
    final_step = ppo.config.num_updates * ppo.config.batch_size  # total_steps rounded down to whole rollouts

    def after_update(metrics: dict) -> None:
        logger.log({k: v for k, v in metrics.items() if np.isfinite(v)}, step=ppo.global_step)
        if evaluate_now(ppo.global_step) or ppo.global_step >= final_step:  # and always after the last update
            result = evaluate(ppo.agent, spec, config.eval_episodes, seed=10_000 + ppo.config.seed)
            row = {"step": ppo.global_step, "mean_return": result["mean_return"], "std_return": result["std_return"]}
            evaluations.append(row)
            logger.log({"eval/mean_return": row["mean_return"]}, step=ppo.global_step)
            if on_evaluation is not None:
                on_evaluation(row)
            save_atomically(ppo_state(ppo), state_file)

    try:
        ppo.learn(progress=config.progress, callback=after_update)
    finally:
        ppo.envs.close()
    return evaluations.rows, logger


def ppo_state(ppo) -> dict[str, Any]:
    """PPO's state and, under each hook's name, the state of each hook PPO's does not hold (those
    that are not modules: a module hook's parameters are in PPO's)."""
    return {"ppo": ppo.state_dict(), **{hook.name: state for hook in _plain_hooks(ppo)
                                         if (state := hook.state_dict())}}


def load_ppo_state(ppo, state: dict[str, Any]) -> None:
    """Restore :func:`ppo_state` (or a state saved as PPO's alone, before hooks had their own)."""
    state = state if "ppo" in state else {"ppo": state}
    ppo.load_state_dict(state["ppo"])
    for hook in _plain_hooks(ppo):
        hook.load_state_dict(state.get(hook.name, {}))


def _plain_hooks(ppo) -> list:
    return [hook for hook in ppo.hooks if not isinstance(hook, nn.Module)]
