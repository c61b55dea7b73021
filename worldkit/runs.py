"""A recipe's run folder: resuming after a kill, and refusing to mix two experiments in one folder.

A recipe saves its training state atomically at each evaluation, and on a restart with the same
settings loads it, forgets the log rows written after it (those updates are redone), and goes
on. Shared by every recipe, so they all resume the same way.
"""

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldkit.tracking import RunLogger, config_dict

__all__ = ["check_same_settings", "drop_rows_after", "open_ppo_run", "read_jsonl", "save_atomically",
           "sweep_run_dir", "train_ppo_in_run"]


def open_ppo_run(config: Any, spec, seed: int, resumable: Iterable[str]):
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
    except ValueError:
        envs.close()
        raise
    return run_dir, ppo_config, envs


def train_ppo_in_run(ppo, spec, run_dir: Path, config: Any, *, parts: "dict[str, Any] | None" = None,
                     on_evaluation: "Callable[[dict], None] | None" = None) -> tuple[list[dict], RunLogger]:
    """Train ``ppo`` (a :class:`worldkit.controllers.PPO`) as every PPO recipe does, in ``run_dir``.

    Resumes from the folder's ``state.pt`` if there is one, logs each update, evaluates the
    deterministic policy every ``config.eval_every`` steps and after the last update
    (``config.eval_episodes`` episodes, seeds from 10,000 + the seed), and saves the state then.
    ``config`` is the recipe's: it also gives ``method``, ``wandb_mode`` and ``progress``.
    ``parts`` are further objects with ``state_dict``/``load_state_dict`` saved with PPO's (a
    hook's model, say); ``on_evaluation`` gets each evaluation's row, after it is written.

    Returns:
        The evaluation rows (those of earlier sittings too) and the open logger (the caller
        logs its artifacts and calls ``finish``). PPO's envs are closed.
    """
    from worldkit.controllers.ppo import evaluate

    parts = parts or {}
    state_file = run_dir / "state.pt"
    resumed = state_file.exists()
    if resumed:
        state = torch.load(state_file, weights_only=True)
        state = state if "ppo" in state else {"ppo": state}  # saved before parts existed: PPO's alone
        ppo.load_state_dict(state["ppo"])
        for name, part in parts.items():
            part.load_state_dict(state[name])
        print(f"resuming {run_dir} at step {ppo.global_step}")
        drop_rows_after(ppo.global_step, run_dir / "metrics.jsonl", run_dir / "evaluations.jsonl")
    logger = RunLogger(run_dir, config, mode=config.wandb_mode, name=run_dir.name, group=f"{spec.name}-{config.method}")
    evaluations = read_jsonl(run_dir / "evaluations.jsonl") if resumed else []
    next_eval = (ppo.global_step // config.eval_every + 1) * config.eval_every
    final_step = ppo.config.num_updates * ppo.config.batch_size  # total_steps rounded down to whole rollouts

    def after_update(metrics: dict) -> None:
        nonlocal next_eval
        logger.log({k: v for k, v in metrics.items() if np.isfinite(v)}, step=ppo.global_step)
        if ppo.global_step >= next_eval or ppo.global_step >= final_step:  # and always after the last update
            result = evaluate(ppo.agent, spec, config.eval_episodes, seed=10_000 + ppo.config.seed)
            row = {"step": ppo.global_step, "mean_return": result["mean_return"], "std_return": result["std_return"]}
            evaluations.append(row)
            with open(run_dir / "evaluations.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
            logger.log({"eval/mean_return": row["mean_return"]}, step=ppo.global_step)
            if on_evaluation is not None:
                on_evaluation(row)
            save_atomically({"ppo": ppo.state_dict(), **{name: part.state_dict() for name, part in parts.items()}},
                            state_file)
            next_eval += config.eval_every

    try:
        ppo.learn(progress=config.progress, callback=after_update)
    finally:
        ppo.envs.close()
    return evaluations, logger


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file renamed into place: a kill leaves the old state or the new."""
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def check_same_settings(run_dir: Path, config: Any, resumable: Iterable[str]) -> None:
    """Refuse to resume a run folder that holds a run with other settings (it would mix them).

    Args:
        run_dir: The run folder (holding ``state.pt`` and ``config.json`` once a run saved).
        config: The recipe's config dataclass.
        resumable: Top-level fields that may change when a run is continued (e.g. total_steps).
    """
    saved_file = Path(run_dir) / "config.json"
    if not (Path(run_dir) / "state.pt").exists() or not saved_file.exists():
        return
    wanted, resumable = config_dict(config), set(resumable)
    saved = _with_missing(json.loads(saved_file.read_text()), config_dict(type(config)()))
    differences = sorted(key for key in set(saved) | set(wanted)
                         if key not in resumable and saved.get(key) != wanted.get(key))
    if differences:
        details = ", ".join(f"{key}: saved {saved.get(key)!r}, now {wanted.get(key)!r}" for key in differences)
        raise ValueError(f"{run_dir} holds a run with other settings ({details}); "
                         "give another --run_dir, or the saved settings to resume it")


def _with_missing(saved: dict, defaults: dict) -> dict:
    """``saved`` with the settings added since it was written filled in at their defaults (what
    the run used, as they did not exist yet)."""
    filled = {**defaults, **saved}
    for key, value in saved.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            filled[key] = _with_missing(value, defaults[key])
    return filled


def drop_rows_after(step: int, *files: Path) -> None:
    """Forget what was logged after the saved state: those updates are redone."""
    for path in files:
        kept = [row for row in read_jsonl(path) if row["step"] <= step]
        path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (none if it does not exist)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def sweep_run_dir(run_dir: Path) -> Path:
    """Under a W&B sweep agent, one folder per sweep run (the run id appended); else ``run_dir``."""
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return run_dir.with_name(f"{run_dir.name}-{os.environ['WANDB_RUN_ID']}")
    return run_dir
