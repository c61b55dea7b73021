"""The run plumbing: schedules, atomic saves, evaluation rows on resume, and hooks saving their state."""

import json

import pytest
import torch

from worldkit.controllers import PPO, PPOConfig, PPOHook
from worldkit.envs import make_vector_env
from worldkit.files import read_jsonl, temp_path
from worldkit.runs import Every, Ratio, save_atomically
from worldkit.runs.files import EvaluationLog
from worldkit.runs.ppo import load_ppo_state, ppo_state


def test_every_fires_once_per_crossing_even_after_a_jump():
    every = Every(10)
    assert [every(count) for count in (3, 9, 10, 15, 19, 27, 29, 30, 31)] == \
        [False, False, True, False, False, True, False, True, False]


def test_every_resumes_where_it_was():
    every = Every(10)
    every(27)
    resumed = Every(10)
    resumed.load_state_dict(json.loads(json.dumps(every.state_dict())))
    assert [resumed(count) for count in (29, 30)] == [False, True]
    assert Every(10, after=27).next == Every(10, after=20).next == 30
    with pytest.raises(ValueError, match="every must be at least 1"):
        Every(0)


def test_ratio_owes_updates_for_the_env_steps_after_prefill():
    ratio = Ratio(512, per_update=16 * 64, prefill=5_000)
    assert [ratio.owed(steps) for steps in (0, 4_000, 5_000, 5_001, 5_002)] == [0, 0, 0, 0, 1]
    assert ratio.owed(100_000) == 47_500  # the Dreamer recipe's default run
    assert Ratio(2, per_update=64, prefill=1_000).owed(2_000) == 31  # rounded down


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot save this")


def test_a_failed_save_leaves_the_old_state_whole(tmp_path):
    path = tmp_path / "state.pt"
    save_atomically({"step": 1, "weights": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="cannot save this"):
        save_atomically({"step": 2, "weights": torch.zeros(3), "bad": Unpicklable()}, path)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]  # no temporary file left behind
    assert not temp_path(path).exists()


def test_evaluation_rows_after_the_saved_step_are_forgotten_on_resume(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    log = EvaluationLog(path)
    for step in (10, 20, 30):
        log.append({"step": step, "mean_return": float(step)})
    assert EvaluationLog(path, saved_step=30).rows == read_jsonl(path) == log.rows
    resumed = EvaluationLog(path, saved_step=20)
    assert [row["step"] for row in resumed.rows] == [row["step"] for row in read_jsonl(path)] == [10, 20]
    resumed.append({"step": 30, "mean_return": 3.0})
    assert [row["step"] for row in read_jsonl(path)] == [10, 20, 30]
    fresh = EvaluationLog(path)  # no saved state: what a killed sitting logged before saving is redone
    assert fresh.rows == read_jsonl(path) == []


class CountingHook(PPOHook):
    """A plain hook with state of its own: how many rollouts it saw."""

    def __init__(self):
        self.rollouts = 0

    def on_rollout_end(self, rollout) -> None:
        self.rollouts += 1

    def state_dict(self) -> dict:
        return {"rollouts": self.rollouts}

    def load_state_dict(self, state: dict) -> None:
        self.rollouts = state["rollouts"]


def small_ppo(hooks) -> PPO:
    config = PPOConfig(total_steps=128, num_envs=2, num_steps=32, num_minibatches=2, update_epochs=1)
    return PPO(config, make_vector_env("CartPole-v1", config.num_envs), hooks)


def test_ppo_run_state_holds_each_plain_hooks_own_state_under_its_name(tmp_path):
    hook, silent = CountingHook(), PPOHook()
    ppo = small_ppo([hook, silent])
    ppo.learn()
    ppo.envs.close()
    assert hook.rollouts == 2 and silent.state_dict() == {}
    save_atomically(ppo_state(ppo), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["CountingHook"] == {"rollouts": 2} and "PPOHook" not in state  # nothing saved for no state

    again = small_ppo([CountingHook(), PPOHook()])
    load_ppo_state(again, state)
    again.envs.close()
    assert again.hooks[0].rollouts == 2 and again.global_step == ppo.global_step


def test_a_state_saved_as_ppos_alone_still_loads():
    ppo = small_ppo([])
    ppo.learn()
    ppo.envs.close()
    again = small_ppo([])
    load_ppo_state(again, ppo.state_dict())
    again.envs.close()
    assert again.global_step == ppo.global_step
