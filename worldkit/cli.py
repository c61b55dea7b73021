"""The ``worldkit`` command: evaluate and watch saved agents, dream from a world model, list
checkpoints, and see where runs stand.

    worldkit eval runs/dreamer --episodes 10 --video agent.mp4
    worldkit dream dmc-walker-rssm --video dream.mp4
    worldkit checkpoints
    worldkit runs runs/wm_ppo
    worldkit recipe dreamer --env=dmc:walker-walk     # any recipe, with its own flags

A mistake in what is asked (an unknown env, a foreign checkpoint, a busy run folder) is one line
on stderr and exit status 2; ``WORLDKIT_TRACEBACK=1`` shows the whole traceback.
"""

import argparse
import json
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "run_command"]


def run_command(command: Callable[[], Any]) -> Any:
    """Run ``command``; a user error is one line on stderr and exit status 2, not a traceback."""
    from worldkit.checkpoints import CheckpointError
    from worldkit.data.lock import StoreLockedError
    from worldkit.envs.backends import RenderingError
    from worldkit.runs.folder import RunDirInUseError

    try:
        return command()
    except (ValueError, CheckpointError, RunDirInUseError, StoreLockedError, RenderingError, FileNotFoundError) as error:
        if os.environ.get("WORLDKIT_TRACEBACK"):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


# ----------------------------------------------------------------------------------- worldkit eval

def load_actor(path: Path) -> tuple[Any, str | None, dict]:
    """What acts in a run folder or checkpoint: ``(policy for drive, env id, run config)``.

    A Dreamer agent (``checkpoints/agent``), a PPO policy (``checkpoints/policy``), or World Models'
    CMA-ES controller with its V + M (``checkpoints/controller`` and ``world_model``, of the stage
    the run selected).
    """
    from worldkit.checkpoints import from_pretrained

    path = Path(path)
    if not path.is_dir():
        from worldkit.checkpoints import _resolve

        path = _resolve(str(path))  # a shipped checkpoint's name, or the one clear line for a missing path
    config = _read_json(path / "config.json") if (path / "config.json").exists() else {}
    if config.get("format") == "worldkit-checkpoint":  # a checkpoint folder itself
        module = from_pretrained(path)  # a Dreamer agent holds its actions as long as in training
        return _actor_of(module, path), None, {"action_repeat": getattr(module, "action_repeat", 1)}
    checkpoints = path / "checkpoints"
    selection = _read_json(path / "selection.json") if (path / "selection.json").exists() else {}
    if selection:  # World Models: the stage the run chose, acting as the run evaluated it
        checkpoints = path / selection["chosen"] / "checkpoints"
        config = config or (_read_json(path / "eval" / "config.json") if (path / "eval" / "config.json").exists() else {})
    if (checkpoints / "agent").exists():
        return _actor_of(from_pretrained(checkpoints / "agent"), checkpoints / "agent"), config.get("env"), config
    if (checkpoints / "controller").exists() and (checkpoints / "world_model").exists():
        from worldkit.dream.driver import LoopEscape, WorldModelPolicy

        world_model, controller = from_pretrained(checkpoints / "world_model"), from_pretrained(checkpoints / "controller")
        escape = None
        if selection.get("escape"):  # the random action that ends a loop of repeated frames, as evaluated
            escape = LoopEscape(selection["escape"], int(world_model.action_space.n), selection.get("explore_actions"))
        return WorldModelPolicy(world_model, controller.act, escape), world_model.env_spec, config
    if (checkpoints / "policy").exists() and (checkpoints / "world_model").exists() and config.get("method") == "wm_ppo":
        from worldkit.controllers.wm_ppo import load_policy_with_features

        agent = load_policy_with_features(checkpoints / "policy", checkpoints / "world_model",
                                          config.get("policy_input", "z"))
        return _actor_of(agent, checkpoints / "policy"), config.get("env"), config
    if (checkpoints / "policy").exists() and config.get("world_model") in ("ensemble", "rssm"):  # PPO in a dream
        from worldkit.dream.driver import WorldModelPolicy

        agent = from_pretrained(checkpoints / "policy")
        policy = WorldModelPolicy(from_pretrained(checkpoints / "world_model"),
                                  lambda features: agent.act(features, deterministic=True))
        return policy, config.get("env"), config
    if (checkpoints / "policy").exists():
        return _actor_of(from_pretrained(checkpoints / "policy"), checkpoints / "policy"), config.get("env"), config
    raise ValueError(f"{path} holds no agent to evaluate: give a run folder with checkpoints/agent (Dreamer), "
                     "checkpoints/policy (PPO) or checkpoints/controller and world_model (World Models), "
                     "or one of those checkpoint folders")


def _actor_of(module: Any, path: Path) -> Any:
    from worldkit.controllers.dreamer import DreamerAgent
    from worldkit.controllers.policy import PPOAgent

    if isinstance(module, DreamerAgent):
        return module.policy(deterministic=True)
    if isinstance(module, PPOAgent):
        return lambda obs: module.act(obs, deterministic=True)
    raise ValueError(f"{path} holds a {type(module).__name__}, which does not act on its own: give an agent, a "
                     "policy, or a run folder")


def evaluate(path: Path, episodes: int, seed: int, video: Path | None, env_id: str | None) -> dict:
    """Play ``episodes`` seeded episodes of the saved agent at ``path``; print and return the results."""
    from worldkit.data.driver import drive, summarize
    from worldkit.envs import make_env, parse_spec
    from worldkit.video import FrameRecorder, write_video

    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    policy, recorded_env, config = load_actor(path)
    if config.get("env_module"):  # a user's env, registered by their module
        import importlib

        importlib.import_module(config["env_module"])
    env_id = env_id or recorded_env or getattr(getattr(policy, "world_model", None), "env_spec", None)
    if env_id is None:
        raise ValueError(f"{path} does not record its env: pass --env=ID")
    spec = parse_spec(env_id, config.get("obs"))
    options: dict[str, Any] = {"action_repeat": config.get("action_repeat") or 1}
    if spec.obs == "pixels":
        model = getattr(policy, "world_model", None)
        shape = getattr(getattr(model, "observation_space", None), "shape", None)
        if shape is not None and len(shape) == 3:
            options["size"] = tuple(shape[:2])  # the frames the model was trained on
        elif config.get("frame_size"):
            options["size"] = tuple(config["frame_size"])
    frames: list[np.ndarray] = []
    if video is not None and spec.obs == "state":
        env = make_env(spec, render_mode="rgb_array", size=(256, 256), **options)
    else:
        env = make_env(spec, **options)
    if video is not None:
        env = FrameRecorder(env, frames)
    with env:
        result = summarize(drive(env, policy, seeds=range(seed, seed + episodes)))
    print(f"{path}: {result['mean_return']:.1f} +- {result['std_return']:.1f} return over {episodes} episodes of "
          f"{spec} (seeds {seed}-{seed + episodes - 1}); mean length {result['mean_length']:.0f}"
          + (f"; success rate {result['success_rate']:.0%}" if spec.family == "miniworld" else ""))  # a goal to reach
    if video is not None and frames:
        write_video(frames, video)
        print(f"video: {video}")
    return result


# ---------------------------------------------------------------------------------- worldkit dream

def dream(checkpoint: str, video: Path, steps: int, context: int, seed: int) -> Path:
    """Real frames beside the world model's open-loop dream from the same start and random actions."""
    import torch

    from worldkit.checkpoints import from_pretrained
    from worldkit.data.driver import drive
    from worldkit.envs import make_env
    from worldkit.video import write_video

    model = from_pretrained(checkpoint)
    shape = getattr(getattr(model, "observation_space", None), "shape", None)
    if model.env_spec is None or shape is None or len(shape) != 3:
        raise ValueError(f"{checkpoint} is not a pixel world model that records its env: dream videos show frames")
    episodes: list[dict] = []
    with make_env(model.env_spec, size=tuple(shape[:2]), action_repeat=2 if model.env_spec.startswith("dmc:") else 1) as env:
        drive(env, None, seeds=[seed], max_steps=context + steps, on_episode=episodes.append)
    obs, actions = torch.as_tensor(episodes[0]["obs"]), torch.as_tensor(episodes[0]["action"])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        state = model.observe(model.initial_state(1), None, obs[:1])
        for t in range(1, min(context, len(actions))):
            state = model.observe(state, actions[t - 1][None], obs[t : t + 1])
        dreamed = []
        for t in range(min(context, len(actions)) - 1, min(len(actions), context - 1 + steps)):
            state, _, _ = model.imagine(state, actions[t][None], generator=generator)
            dreamed.append((model.decode(state)[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    real = episodes[0]["obs"][min(context, len(actions)):][: len(dreamed)]
    side_by_side = [np.concatenate([a, b], axis=1) for a, b in zip(real, dreamed)]
    write_video(side_by_side, video, fps=15)
    print(f"{video}: real (left) and dreamed (right), {len(side_by_side)} steps after {context} observed, "
          f"the same random actions")
    return video


# ---------------------------------------------------------------------------- worldkit checkpoints

def list_checkpoints(folder: Path | None) -> list[dict]:
    """Every checkpoint under ``folder`` (default: the shipped ones): name, class, env, key numbers."""
    from worldkit.checkpoints import _checkpoints_root

    root = Path(folder) if folder is not None else _checkpoints_root()
    if not root.exists():
        raise ValueError(f"no checkpoint folder at {root}")
    rows = []
    for config_file in sorted(root.glob("**/config.json")):
        config = _read_json(config_file)
        if config.get("format") != "worldkit-checkpoint":
            continue
        numbers = {k: v for k, v in config.get("metrics", {}).items() if isinstance(v, (int, float))}
        rows.append({"name": str(config_file.parent.relative_to(root)), "class": config["class"].rsplit(".", 1)[-1],
                     "env": config.get("env_spec"), "metrics": dict(list(numbers.items())[:3])})
    for row in rows:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items())
        print(f"{row['name']:28s} {row['class']:22s} {row['env'] or '-':26s} {metrics}")
    if not rows:
        print(f"no checkpoints under {root}")
    return rows


# ----------------------------------------------------------------------------------- worldkit runs

def describe_runs(run_dir: Path) -> list[dict]:
    """Where each run under ``run_dir`` stands: steps, last evaluation, finished or resumable, in use."""
    from worldkit.runs.folder import LOCK_FILE, run_dir_holder

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"no run folder at {run_dir}")
    folders = [run_dir] if (run_dir / "config.json").exists() else sorted(
        p.parent for p in run_dir.glob("*/config.json"))
    rows = []
    for folder in folders:
        evaluations = _read_jsonl(folder / "evaluations.jsonl")
        last = evaluations[-1] if evaluations else {}
        status = "finished" if (folder / "summary.json").exists() else \
            "resumable" if (folder / "state.pt").exists() else "not saved yet"
        holder = run_dir_holder(folder) if (folder / LOCK_FILE).exists() else None
        row = {"run": str(folder), "status": status, "in_use_by": holder, "step": last.get("step"),
               "last_eval_return": last.get("mean_return")}
        rows.append(row)
        evaluation = "no evaluation yet" if not last else f"step {last['step']:,}: eval return {last['mean_return']:.1f}"
        print(f"{folder}: {status}{f', running (process {holder})' if holder else ''}; {evaluation}")
    if not rows:
        print(f"no runs under {run_dir}")
    return rows


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the file is damaged") from error


def _read_jsonl(path: Path) -> list[dict]:
    from worldkit.files import read_jsonl

    return read_jsonl(path) if Path(path).exists() else []


# -------------------------------------------------------------------------------------------- main

RECIPES = ("dreamer", "dreamer_dmc_walker", "wm_ppo_walker", "miniworld_cmaes", "dream_ppo_walker", "mbppo_hopper")


def main(argv: "list[str] | None" = None) -> int:
    """The command line; 0 on success (a user error exits with 2)."""
    parser = argparse.ArgumentParser(prog="worldkit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("eval", help="play a saved agent: mean return, success rate, a video")
    p.add_argument("path", type=Path, help="a run folder or an agent/policy checkpoint")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="reset seed of the first episode (the others follow)")
    p.add_argument("--video", type=Path, default=None, help="write the episodes as an mp4 here")
    p.add_argument("--env", default=None, help="another env id than the one recorded")
    p = commands.add_parser("dream", help="real frames beside a pixel world model's open-loop dream, as an mp4")
    p.add_argument("checkpoint", help="a checkpoint folder or a shipped name")
    p.add_argument("--video", type=Path, default=Path("dream.mp4"))
    p.add_argument("--steps", type=int, default=100, help="dreamed steps")
    p.add_argument("--context", type=int, default=5, help="real frames the model observes first")
    p.add_argument("--seed", type=int, default=0)
    p = commands.add_parser("checkpoints", help="the shipped checkpoints (or those under --dir) and their numbers")
    p.add_argument("--dir", type=Path, default=None)
    p = commands.add_parser("runs", help="where the runs in a folder stand")
    p.add_argument("run_dir", type=Path)
    p = commands.add_parser("recipe", help="run a recipe with its own flags (worldkit recipe NAME --help)")
    p.add_argument("name", choices=RECIPES)
    p.add_argument("flags", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    commands_by_name = {
        "eval": lambda: evaluate(args.path, args.episodes, args.seed, args.video, args.env),
        "dream": lambda: dream(args.checkpoint, args.video, args.steps, args.context, args.seed),
        "checkpoints": lambda: list_checkpoints(args.dir),
        "runs": lambda: describe_runs(args.run_dir),
    }
    if args.command == "recipe":
        run_recipe(args.name, args.flags)
    else:
        run_command(commands_by_name[args.command])
    return 0


def run_recipe(name: str, flags: list[str]) -> Any:
    """A recipe as ``python recipes/<name>.py`` runs it: from the source checkout, or the copy an
    installed wheel carries (``worldkit.recipes``)."""
    script = Path(__file__).resolve().parents[1] / "recipes" / f"{name}.py"
    sys.argv = [str(script), *flags]
    if script.exists():
        return runpy.run_path(str(script), run_name="__main__")
    return runpy.run_module(f"worldkit.recipes.{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
