"""The one acting driver: real envs stepped by any policy, whole episodes out, one result schema."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldkit.data.driver import Driver, drive, succeeded, summarize
from worldkit.dream.driver import WorldModelPolicy, evaluate_in_real_env
from worldkit.envs import make_vector_env
from worldkit.models import DynamicsEnsemble
from worldkit.models.rssm import RSSM


def test_seeded_episodes_are_reproducible_and_whole():
    episodes = []
    with gym.make("CartPole-v1") as env:
        rows = drive(env, None, seeds=[3, 4, 3], on_episode=episodes.append)
    assert [row["length"] for row in rows] == [len(e["action"]) for e in episodes]
    assert [row["return"] for row in rows] == [float(e["reward"].sum()) for e in episodes]
    for episode in episodes:
        assert len(episode["obs"]) == len(episode["action"]) + 1
        assert episode["terminated"][-1] or episode["truncated"][-1]
        assert not (episode["terminated"][:-1].any() or episode["truncated"][:-1].any())
    np.testing.assert_array_equal(episodes[0]["obs"], episodes[2]["obs"])  # same seed, same episode
    np.testing.assert_array_equal(episodes[0]["action"], episodes[2]["action"])
    assert not np.array_equal(episodes[0]["obs"][0], episodes[1]["obs"][0])


def test_max_steps_cuts_an_episode_as_truncated():
    episodes = []
    with gym.make("CartPole-v1") as env:
        rows = drive(env, lambda obs: np.zeros(len(obs), dtype=np.int64), seeds=[0, 1], max_steps=5,
                     on_episode=episodes.append)
    assert all(row["length"] <= 5 for row in rows)
    assert all(e["truncated"][-1] or e["terminated"][-1] for e in episodes)


def test_a_vector_env_splits_the_episodes_between_its_envs():
    """Short episodes finish first; a quota per env keeps them from being over-counted."""
    envs = make_vector_env("CartPole-v1", 2)
    try:
        rows = drive(envs, None, episodes=6, seed=0)
    finally:
        envs.close()
    assert len(rows) == 6
    result = summarize(rows)
    assert result["episodes"] == 6 and result["mean_length"] == np.mean([r["length"] for r in rows])
    assert result["std_return"] == pytest.approx(np.std(result["returns"], ddof=1))


def test_a_driver_carries_running_episodes_over_from_one_call_to_the_next():
    """An online agent collects a chunk at a time: no step is lost between chunks, and every
    episode that finishes is kept, whichever env finished it."""
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    driver, episodes = Driver(envs, seed=0), []
    try:
        rows = [row for _ in range(20) for row in driver.run(None, rounds=7, on_episode=episodes.append)]
        zeros = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731 - the policy may change between calls
        rows += driver.run(zeros, rounds=30, on_episode=episodes.append)
    finally:
        envs.close()
    running = sum(len(recorder.action) for recorder in driver.recorders)
    assert sum(row["length"] for row in rows) + running == 2 * (20 * 7 + 30)  # every step is in one episode
    assert len(rows) == len(episodes) > 4
    for episode in episodes:
        assert episode["terminated"][-1] or episode["truncated"][-1]
        assert len(episode["obs"]) == len(episode["action"]) + 1
    assert episodes[-1]["action"][-1] == 0  # the last chunk's policy acted
    with pytest.raises(ValueError, match="exactly one"):
        driver.run(None, rounds=1, steps=5)


def test_the_success_rule_needs_a_paid_termination():
    ends = {"terminated": np.array([False, True]), "truncated": np.array([False, False])}
    assert succeeded({**ends, "reward": np.array([0.0, 1.0])})
    assert not succeeded({**ends, "reward": np.array([1.0, 0.0])})
    assert not succeeded({"terminated": np.array([False, False]), "truncated": np.array([False, True]),
                          "reward": np.array([0.0, 1.0])})


def test_a_policy_may_act_in_numpy_as_stable_baselines3_predict_does():
    """A world-model policy whose controller returns numpy (SB3's ``predict``) acts and is observed."""
    env = gym.make("Pendulum-v1")
    model = DynamicsEnsemble(env.observation_space, env.action_space, ensemble_size=2, hidden_sizes=(8,))
    calls = []

    def numpy_controller(features: torch.Tensor) -> np.ndarray:
        calls.append(features.shape)
        return np.full((len(features), 1), 5.0, dtype=np.float32)  # beyond the bounds: the env gets 2.0

    result = evaluate_in_real_env(model, numpy_controller, env, 2, seed=0, max_steps=7)
    env.close()
    assert result["lengths"] == [7, 7] and calls[0] == (1, 3)
    policy = WorldModelPolicy(model, numpy_controller)
    assert policy.act(np.zeros((1, 3), dtype=np.float32)).tolist() == [[2.0]]
    assert policy.last_action.tolist() == [[5.0]]  # the model observes what the controller chose


def test_an_evaluation_through_a_sampling_world_model_repeats_and_leaves_the_callers_generator_alone():
    """An RSSM samples its latent while it filters: the evaluation seeds that sampling, so the same
    call gives the same episodes, and training that evaluates draws what it would have drawn."""
    env = gym.make("Pendulum-v1")
    model = RSSM(env.observation_space, env.action_space, size="tiny")

    def controller(features: torch.Tensor) -> torch.Tensor:  # acts on the sampled latent
        return torch.tanh(features[:, -8:].sum(-1, keepdim=True) - 1.0) * 2

    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = evaluate_in_real_env(model, controller, env, 2, seed=0, max_steps=30)
    assert torch.equal(torch.get_rng_state(), before)
    again = evaluate_in_real_env(model, controller, env, 2, seed=0, max_steps=30)
    other = evaluate_in_real_env(model, controller, env, 2, seed=1, max_steps=30)
    env.close()
    assert first["returns"] == again["returns"] and other["returns"] != first["returns"]
