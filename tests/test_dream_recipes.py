"""The dreaming recipes run end to end on tiny budgets, resume, and refuse bad input early."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldkit.checkpoints import from_pretrained
from worldkit.controllers.dreamer import DreamerAgent, DreamerConfig, DreamerLearner
from worldkit.data import EpisodeStore, collect
from worldkit.envs import parse_spec
from worldkit.models.rssm import RSSM
from worldkit.runs.dream_ppo import DreamPPOConfig, _validate
from worldkit.runs.dreamer import DreamerRunConfig, preset_config
from worldkit.runs.files import write_json

ROOT = Path(__file__).resolve().parents[1]
TINY_DREAMER = ["--preset=tiny", "--prefill=500", "--train_ratio=2", "--size=tiny", "--hidden=32", "--batch_size=4",
                "--sequence_length=16", "--eval_every=1000", "--dreamer.hidden=32", "--dreamer.layers=1"]
# 32 minibatches: PPO trains on minibatches of 8 dreamed steps, while the policy rebuilt to act
# (one env) would have minibatches of 1, which it must not refuse
TINY_DREAM_PPO = ["--first_steps=1000", "--steps_per_round=500", "--model_updates=20", "--dream_steps=1024",
                  "--ppo.num_envs=8", "--ppo.num_steps=32", "--ppo.num_minibatches=32", "--ppo.update_epochs=1",
                  "--horizon=32", "--eval_episodes=2", "--ensemble_hidden", "32", "32"]


def run_recipe(name: str, run_dir: Path, *flags: str, timeout: float = 300,
               env: "dict[str, str] | None" = None) -> subprocess.CompletedProcess:
    """The recipe as a user runs it: a fresh process, flags on the command line."""
    command = [sys.executable, str(ROOT / "recipes" / name), f"--run_dir={run_dir}", "--wandb_mode=disabled",
               "--progress=False", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=None if env is None else {**os.environ, **env})


def load_recipe(name: str):
    module = name.removesuffix(".py")
    spec = importlib.util.spec_from_file_location(module, ROOT / "recipes" / name)
    recipe = sys.modules.setdefault(module, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(recipe)
    return recipe


def recipe_main(name: str, run_dir: Path, *flags: str):
    """``main(parsed flags)`` in this process: for errors, which need no fresh process to show."""
    recipe = load_recipe(name)
    from worldkit.config import parse_config

    config = parse_config(recipe.Config, [f"--run_dir={run_dir}", "--wandb_mode=disabled", "--progress=False", *flags])
    return recipe.main(config)


def test_dreamer_recipe_runs_resumes_and_writes_every_artifact(tmp_path):
    first = run_recipe("dreamer_dmc_walker.py", tmp_path, "--total_steps=1000", "--video=False", *TINY_DREAMER)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not (tmp_path / "evaluation.mp4").exists()
    first_seconds = json.loads((tmp_path / "summary.json").read_text())["wall_clock_seconds"]
    # resumed under bf16 autocast, a change of speed (like --device), not of experiment
    second = run_recipe("dreamer_dmc_walker.py", tmp_path, "--total_steps=2000", "--precision=bf16", *TINY_DREAMER)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "at 1000 env steps" in second.stdout
    for name in ["metrics.jsonl", "metrics.csv", "evaluations.jsonl", "summary.json", "learning_curve.png",
                 "open_loop.png", "evaluation.mp4", "checkpoints/world_model/model.safetensors",
                 "checkpoints/agent/model.safetensors"]:
        assert (tmp_path / name).exists(), name
    evaluations = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    assert [row["step"] for row in evaluations] == [1000, 2000]
    assert all(np.isfinite(row["mean_return"]) for row in evaluations)
    # the wall-clock goes on from the first sitting's, so a run split by a kill reports its whole time
    assert 0 < evaluations[0]["seconds"] <= first_seconds < evaluations[1]["seconds"]
    assert json.loads((tmp_path / "summary.json").read_text())["wall_clock_seconds"] >= evaluations[1]["seconds"]
    model = RSSM.from_pretrained(tmp_path / "checkpoints" / "world_model")
    assert (model.cfg["hidden"], model.cfg["deter"]) == (32, 64)  # --hidden over the tiny preset's 64
    assert evaluations[-1]["updates"] > evaluations[0]["updates"] > 0
    assert isinstance(from_pretrained(tmp_path / "checkpoints" / "world_model"), RSSM)
    agent = from_pretrained(tmp_path / "checkpoints" / "agent")
    assert isinstance(agent, DreamerAgent) and agent.env_spec == "dmc:walker-walk"
    # loaded alone, it holds each action for 2 env steps as in training: 500 of its steps end dm-control's 1,000
    assert agent.action_repeat == 2 and agent.evaluate(episodes=1, seed=5)["mean_length"] == 500
    torch.testing.assert_close(agent.actor_critic.state_dict(), torch.load(tmp_path / "state.pt")["learner"]["actor_critic"])
    with pytest.raises(ValueError, match="holds a run with other settings.*model_lr"):
        recipe_main("dreamer_dmc_walker.py", tmp_path, "--total_steps=2000", *TINY_DREAMER, "--model_lr=0.1")


@pytest.mark.parametrize("env, flags, frames", [
    # MuJoCo state, two envs collecting, rendered video; a budget of 7 s ends it long before its steps
    ("gym:Hopper-v4", ["--envs=2", "--total_steps=10000000", "--hours=0.002"], True),
    # a user's env, Dict observations: state and image
    ("WorldkitSeeingCorridor-v0", ["--env_module=user_envs", "--envs=2", "--total_steps=400"], True),
    # dm-control from 64x64 frames: one episode of 1,000 env steps (125 frames: rendering is what costs)
    ("dmc:walker-walk", ["--obs=pixels", "--total_steps=1000", "--action_repeat=8", "--train_ratio=2", "--video=False"],
     False),
])  # MiniWorld pixels with Discrete actions: tests/test_cli.py; a user's env that cannot render: the test below
def test_dreamer_runs_on_every_family_and_its_agent_acts(tmp_path, env, flags, frames):
    result = run_recipe("dreamer.py", tmp_path, f"--env={env}", "--preset=tiny", "--prefill=200",
                        *flags, env={"PYTHONPATH": str(ROOT / "tests")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "updates of 4 x 16" in result.stdout  # the budget line, printed before the run
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] > 0 and np.isfinite(summary["final_eval_return"])
    if "--hours=0.002" in flags:
        assert "stops after 0.002 h" in result.stdout and summary["stopped_by"] == "hours"
        assert 200 < summary["env_steps"] < 10_000_000 and 7.2 <= summary["wall_clock_seconds"] < 60
    else:
        assert summary["stopped_by"] == "steps" and summary["env_steps"] >= 400
    assert (tmp_path / "evaluation.mp4").exists() == frames
    agent = from_pretrained(tmp_path / "checkpoints" / "agent")
    assert isinstance(agent, DreamerAgent) and agent.env_spec == summary["env"]
    if env.startswith("gym:"):  # loaded in a fresh process, the agent plays its env
        assert agent.evaluate(episodes=1, seed=3)["episodes"] == 1


def test_dreamer_recipe_refuses_bad_input_before_work(tmp_path):
    with pytest.raises(ValueError, match="flat state vector"):
        recipe_main("dreamer.py", tmp_path, "--env=gym:Blackjack-v1")
    with pytest.raises(ValueError, match="Unknown environment"):
        recipe_main("dreamer.py", tmp_path, "--env=gym:Walker3d-v4")
    with pytest.raises(ValueError, match="env_module=no_such_package"):
        recipe_main("dreamer.py", tmp_path, "--env_module=no_such_package")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="finds no GPU"):
            recipe_main("dreamer.py", tmp_path, "--device=cuda")
    with pytest.raises(ValueError, match="unknown Dreamer preset"):
        preset_config(DreamerRunConfig, "huge")
    with pytest.raises(ValueError, match="size must be one of"):
        load_recipe("dreamer_dmc_walker.py").Config(size="huge", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="deter must be at least 1"):
        load_recipe("dreamer_dmc_walker.py").Config(deter=0, run_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"decode_fraction must be in \(0, 1\]"):
        DreamerRunConfig(decode_fraction=1.5, run_dir=str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_dream_ppo_recipe_improves_in_rounds_resumes_and_reports_the_gap(tmp_path):
    """PPO only in dreams, round by round: the first round's real episodes are random, the second's
    the policy's; a second sitting goes on after the saved round; each round reports real and
    dreamed returns over the same horizon."""
    first = run_recipe("dream_ppo_walker.py", tmp_path, *TINY_DREAM_PPO, "--rounds=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "1 rounds, 1,000 real steps" in first.stdout  # the budget split, printed first
    assert "dreams ended by the Walker2d-v4 termination rule" in first.stdout  # not by a guessing head
    second = run_recipe("dream_ppo_walker.py", tmp_path, *TINY_DREAM_PPO, "--rounds=2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "after round 1" in second.stdout
    rows = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    assert [row["round"] for row in rows] == [1, 2] and rows[0]["real_steps"] < rows[1]["real_steps"]
    assert rows[1]["dream_steps"] == 2 * rows[0]["dream_steps"] == 2 * 1024  # PPO went on from round 1
    for key in ("real_return", "real_return_at_horizon", "dream_return", "dream_to_real_gap", "model_loss"):
        assert all(np.isfinite(row[key]) for row in rows), key
    summary = json.loads((tmp_path / "summary.json").read_text())
    # the run's policy is the round's that did best on its validation episodes, which became data
    validations = [row["validation_return"] for row in rows]
    assert summary["rounds"] == 2 and summary["policy_round"] == 1 + int(validations[1] >= validations[0])
    assert summary["real_return"] == rows[summary["policy_round"] - 1]["real_return"]
    store = EpisodeStore(tmp_path / "data")
    assert store.num_steps == rows[-1]["real_steps"] == summary["real_steps"] >= 1000 + 500
    assert len(store) >= 2 * 5 and np.mean([store.episode(i)["reward"].sum() for i in range(len(store) - 5, len(store))]) \
        == pytest.approx(validations[1])
    again = run_recipe("dream_ppo_walker.py", tmp_path, *TINY_DREAM_PPO, "--rounds=2")  # a finished run, restarted
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["policy_round"] == summary["policy_round"]
    unvalidated = run_recipe("dream_ppo_walker.py", tmp_path / "last", *TINY_DREAM_PPO, "--rounds=1",
                             "--validation_episodes=0")
    assert unvalidated.returncode == 0, unvalidated.stderr[-3000:]
    assert json.loads((tmp_path / "last" / "summary.json").read_text())["policy_round"] == 1
    assert EpisodeStore(tmp_path / "last" / "data").num_steps < 1000 + 1000  # the random steps only
    for name in ("checkpoints/policy/model.safetensors", "checkpoints/world_model/model.safetensors",
                 "learning_curve.png"):
        assert (tmp_path / name).exists(), name
    with pytest.raises(ValueError, match="flat Box"):
        recipe_main("dream_ppo_walker.py", tmp_path / "pixels", "--env=miniworld:Sidewalk")
    assert not (tmp_path / "pixels").exists()
    with pytest.raises(ValueError, match="penalty .* needs --world_model=ensemble"):
        DreamPPOConfig(world_model="rssm", penalty=1.0)
    with pytest.raises(ValueError, match="one member cannot disagree with itself"):
        DreamPPOConfig(ensemble_size=1, penalty=1.0)


def test_validation_killed_mid_way_resumes_to_the_rounds_episodes(tmp_path):
    """A round killed during validation goes on from its marked first validation episode: the round
    ends with exactly its validation episodes, and their mean return is the one it scores."""
    config = DreamPPOConfig(validation_episodes=3, seed=0)
    store = collect(tmp_path / "data", "Walker2d-v4", episodes=4, progress=False)  # 2 before, 2 already validated
    write_json(tmp_path / "validation.json", {"round": 1, "episode": 2})
    store, mean = _validate(config, parse_spec("Walker2d-v4"), tmp_path, store, None, round_index=1)
    assert len(store) == 2 + 3
    assert mean == pytest.approx(np.mean([store.episode(i)["reward"].sum() for i in range(2, 5)]))
    store, _ = _validate(config, parse_spec("Walker2d-v4"), tmp_path, store, None, round_index=2)  # the next round's
    assert len(store) == 5 + 3 and json.loads((tmp_path / "validation.json").read_text()) == {"round": 2, "episode": 5}


def test_dreamer_recipe_compiled_loops_make_the_same_updates():
    """--compile changes speed, not results: the same two updates as eager mode, to float precision
    (inductor told to draw random numbers as eager mode does)."""
    recipe = load_recipe("dreamer_dmc_walker.py")
    generator = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(4, 9, 24, generator=generator),
             "action": torch.rand(4, 8, 6, generator=generator) * 2 - 1,
             "reward": torch.rand(4, 8, generator=generator), "terminated": torch.zeros(4, 8, dtype=torch.bool),
             "mask": torch.ones(4, 8, dtype=torch.bool)}
    updates = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = RSSM(gym.spaces.Box(-np.inf, np.inf, (24,)), gym.spaces.Box(-1, 1, (6,)), size="tiny", hidden=32)
        learner = DreamerLearner(model, DreamerConfig(hidden=32, layers=1, horizon=3))
        if compiled:
            recipe.compile_loops(model, learner)
        optimizer = model.configure_optimizers()
        with torch._inductor.config.patch(fallback_random=True):
            updates[compiled] = [recipe.train_step(model, optimizer, learner, batch) for _ in range(2)]
    torch._dynamo.reset()
    for eager, compiled in zip(updates[False], updates[True]):
        assert eager.keys() == compiled.keys()
        for key in eager:
            assert compiled[key] == pytest.approx(eager[key], rel=1e-4, abs=1e-5), key


def test_dreamer_trains_data_parallel_in_two_processes_that_end_with_the_same_weights(tmp_path):
    """--devices=2 on the CPU: Lightning Fabric starts two processes (gloo); each collects its own
    episodes, and averaged gradients keep their weights equal to the last bit."""
    result = run_recipe("dreamer.py", tmp_path, "--env=WorldkitCorridor-v0", "--env_module=user_envs",
                        "--preset=tiny", "--total_steps=400", "--prefill=200", "--devices=2",
                        env={"PYTHONPATH": str(ROOT / "tests")})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["updates"] > 0
    assert not (tmp_path / "evaluation.mp4").exists()  # the corridor cannot render: evaluated all the same
    first, second = summary["weight_checksums"]
    assert first == second
    own = [EpisodeStore(tmp_path / name) for name in ("replay", "replay-rank1")]
    assert all(len(store) > 0 for store in own)
    assert not np.array_equal(own[0].episode(0)["obs"], own[1].episode(0)["obs"])  # each its own episodes
