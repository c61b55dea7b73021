"""worldkit.envs: the three families, the pixel convention, vectorisation, and clear errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldkit.envs import (
    RenderingError,
    UnknownEnvError,
    make_env,
    make_vector_env,
    parse_spec,
    resize_frame,
)
from worldkit.envs.termination import termination_rule


@pytest.mark.parametrize(
    "spec, obs, shape",
    [
        ("Walker2d-v4", None, (17,)),
        ("gym:HalfCheetah-v4", None, (17,)),
        ("Hopper-v4", None, (11,)),
        ("dmc:walker-walk", "state", (24,)),
        ("dmc:walker-walk", "pixels", (64, 64, 3)),
        ("miniworld:Sidewalk", None, (60, 80, 3)),
        ("Walker2d-v4", "pixels", (64, 64, 3)),
    ],
)
def test_each_family_builds_and_steps_with_the_documented_observations(spec, obs, shape):
    env = make_env(spec, obs=obs, seed=0)
    try:
        first, _ = env.reset(seed=0)
        after, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert first.shape == after.shape == env.observation_space.shape == shape
        pixels = len(shape) == 3
        assert first.dtype == (np.uint8 if pixels else np.float32)
        assert env.observation_space.contains(after)
        assert np.isfinite(reward) and isinstance(terminated, bool) and isinstance(truncated, bool)
        if pixels:
            assert first.std() > 0, "a rendered frame should not be blank"
    finally:
        env.close()


def test_every_id_form_names_the_same_env():
    assert str(parse_spec("Walker2d-v4")) == str(parse_spec("gym:Walker2d-v4")) == "gym:Walker2d-v4"
    assert parse_spec("MiniWorld-Sidewalk-v0") == parse_spec("miniworld:Sidewalk")
    assert parse_spec("miniworld:MiniWorld-Sidewalk-v0") == parse_spec("miniworld:Sidewalk")
    assert parse_spec("dm_control/walker-walk-v0") == parse_spec("dmc:walker-walk")
    pixels = parse_spec("dmc:walker-walk?obs=pixels")
    assert pixels == parse_spec("dmc:walker-walk", obs="pixels") and str(pixels) == "dmc:walker-walk?obs=pixels"


def test_every_registered_miniworld_id_is_reachable():
    miniworld_ids = [i for i in gym.registry if i.startswith("MiniWorld-")]
    assert len(miniworld_ids) > 20
    for gym_id in miniworld_ids:
        assert parse_spec(gym_id).gym_id == gym_id


def test_seeded_envs_repeat_exactly():
    def rollout():
        env = make_env("Walker2d-v4", seed=3)
        obs = [env.reset(seed=3)[0]] + [env.step(env.action_space.sample())[0] for _ in range(20)]
        env.close()
        return np.stack(obs)

    np.testing.assert_array_equal(rollout(), rollout())


def test_pixels_resize_to_the_size_a_model_asks_for():
    env = make_env("miniworld:Sidewalk", size=(64, 64), seed=0)
    obs, _ = env.reset(seed=0)
    env.close()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    small = resize_frame(frame, (30, 40))
    assert small.shape == (30, 40, 3) and small.dtype == np.uint8
    # area averaging keeps the mean brightness
    assert abs(float(small.mean()) - float(frame.mean())) < 1.0


@pytest.mark.parametrize("spec", ["Hopper-v4", "dmc:walker-walk"])
def test_a_state_env_renders_at_the_size_asked_for(spec):
    env = make_env(spec, size=(48, 40), seed=0, render_mode="rgb_array")
    frame = env.render()
    env.close()
    assert frame.shape == (48, 40, 3) and len(env.observation_space.shape) == 1  # still a state env


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_vector_env_reports_episodes_and_final_observations(vectorization):
    envs = make_vector_env("CartPole-v1", 2, vectorization=vectorization)
    try:
        envs.reset(seed=0)
        finished = 0
        for _ in range(200):
            obs, _, terminated, truncated, infos = envs.step(envs.action_space.sample())
            done = terminated | truncated
            if done.any():
                assert infos["_episode"][done].all() and (infos["episode"]["l"][done] > 0).all()
                final = np.stack(infos["final_obs"][done])
                assert not np.array_equal(final, obs[done]), "final_obs must be the last obs, not the reset obs"
                finished += int(done.sum())
        assert finished >= 2
    finally:
        envs.close()


@pytest.mark.parametrize(
    "bad, closest",
    [("Walker2d-v9", "gym:Walker2d-v4"), ("miniworld:Sidewalks", "miniworld:Sidewalk"), ("dmc:walker-wallk", "dmc:walker-walk")],
)
def test_unknown_id_names_the_families_and_the_closest_ids(bad, closest):
    with pytest.raises(UnknownEnvError) as error:
        make_env(bad)
    message = str(error.value)
    assert bad in message and closest in message
    assert "gym:" in message and "miniworld:" in message and "dmc:" in message


def test_bad_options_are_refused_before_building():
    with pytest.raises(ValueError, match="obs must be one of"):
        make_env("Walker2d-v4", obs="rgb")
    with pytest.raises(ValueError, match="only have pixel observations"):
        make_env("miniworld:Sidewalk", obs="state")
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="vectorization"):
        make_vector_env("CartPole-v1", 1, vectorization="threads")
    with pytest.raises(ValueError, match="size"):
        make_env("miniworld:Sidewalk", size=(0, 10))
    with pytest.raises(ValueError, match="action_repeat"):
        make_env("dmc:walker-walk", action_repeat=0)


def test_action_repeat_sums_rewards_and_renders_once_per_held_action():
    held = make_env("dmc:walker-walk", obs="pixels", seed=0, action_repeat=2)
    single = make_env("dmc:walker-walk", obs="pixels", seed=0)
    renders = []
    render = held.unwrapped.render
    held.unwrapped.render = lambda: renders.append(1) or render()
    action = np.full(held.action_space.shape, 0.5, dtype=np.float32)
    for _ in range(3):
        frame, reward, *_ = held.step(action)
        expected_frame, first, *_ = single.step(action)
        expected_frame, second, *_ = single.step(action)
        assert reward == pytest.approx(first + second)
        np.testing.assert_array_equal(frame, expected_frame)
    assert len(renders) == 3


def test_missing_package_names_what_to_install(run_python):
    result = run_python(
        """
        import sys
        sys.modules["miniworld"] = None  # as if the package were not installed
        from worldkit.envs import make_env
        make_env("miniworld:Sidewalk")
        """
    )
    assert result.returncode != 0
    assert "MissingDependencyError" in result.stderr and "pip install miniworld" in result.stderr


@pytest.mark.parametrize("spec", ["dmc:walker-walk?obs=pixels", "Walker2d-v4?obs=pixels"])
def test_rendering_failure_says_how_to_fix_it(run_python, spec):
    result = run_python(
        f"""
        from worldkit.envs import make_env
        make_env("{spec}")
        """,
        env={"MUJOCO_GL": "no-such-backend"},
    )
    assert result.returncode != 0
    assert "RenderingError" in result.stderr and "apt-get install" in result.stderr


def test_headless_rendering_needs_no_variables(run_python):
    result = run_python(
        """
        import os
        from worldkit.envs import make_env
        env = make_env("miniworld:Sidewalk", seed=0)
        print(env.reset(seed=0)[0].shape, os.environ["PYGLET_HEADLESS"], os.environ["MUJOCO_GL"])
        """,
        env={"DISPLAY": "", "MUJOCO_GL": "", "PYOPENGL_PLATFORM": "", "PYGLET_HEADLESS": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "(60, 80, 3) 1 egl" in result.stdout


def test_rendering_error_is_a_runtime_error():
    assert issubclass(RenderingError, RuntimeError)


def test_vector_env_seeds_each_env_differently_and_repeatably():
    def first_obs():
        envs = make_vector_env("Walker2d-v4", 2, seed=7)
        obs, _ = envs.reset()
        envs.close()
        return obs

    obs = first_obs()
    assert not np.array_equal(obs[0], obs[1])
    np.testing.assert_array_equal(obs, first_obs())


@pytest.mark.parametrize("env_id", ["Walker2d-v4", "Hopper-v5", "Ant-v4", "Humanoid-v4", "InvertedPendulum-v4",
                                    "HalfCheetah-v4"])
def test_termination_rules_end_exactly_the_steps_the_env_ends(env_id):
    env = gym.make(env_id)
    rule = termination_rule(env)
    env.action_space.seed(0)
    env.reset(seed=0)
    ended, predicted = [], []
    for _ in range(1500):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        ended.append(terminated)
        predicted.append(bool(rule(torch.as_tensor(obs, dtype=torch.float32)[None])[0]))
        if terminated or truncated:
            env.reset()
    assert predicted == ended
    assert any(ended) == (env_id != "HalfCheetah-v4")  # random actions end these episodes


def test_no_rule_where_the_pose_is_not_in_the_observation():
    assert termination_rule(gym.make("Walker2d-v4", exclude_current_positions_from_observation=False)) is None
    assert termination_rule(gym.make("InvertedDoublePendulum-v4")) is None
    lenient = termination_rule(gym.make("Walker2d-v4", healthy_z_range=(0.1, 5.0)))  # the env's own settings
    assert not lenient(torch.tensor([[0.5, 0.0] + [0.0] * 15]))[0]
