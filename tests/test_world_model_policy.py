"""WorldModelPolicy: a dream-trained controller acting on real frames through its world model."""

import itertools

import numpy as np
import pytest
import torch

from worldkit.controllers.cmaes import LinearController
from worldkit.data import EpisodeStore, collect
from worldkit.dream.driver import LoopEscape, WorldModelPolicy, evaluate_in_real_env
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel


@pytest.fixture
def world_model() -> VAEMDNWorldModel:
    torch.manual_seed(0)
    return VAEMDNWorldModel.compose(ConvVAE(channels=(8, 16), latent_dim=6), MDNRNN(latent_dim=6, hidden_dim=10))


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 60, 80, 3), dtype=np.uint8)


def test_each_env_keeps_its_own_state_and_a_new_episode_starts_fresh(world_model):
    controller = LinearController(world_model.feature_dim, 3).load_vector(torch.randn(world_model.feature_dim * 3 + 3))
    policy = WorldModelPolicy(world_model, controller.act)
    first, second = frames(2, 0), frames(2, 1)
    actions = policy.act(first)
    before = policy.state
    policy.episodes_ended(np.array([True, False]))
    policy.act(second)

    with torch.no_grad():
        fresh = world_model.observe(world_model.initial_state(1), None, torch.from_numpy(second[:1]))
        going_on = world_model.observe(type(before)(*(f[1:] for f in before)), torch.from_numpy(actions[1:]),
                                       torch.from_numpy(second[1:]))
    for field, new, old in zip(policy.state, fresh, going_on):
        torch.testing.assert_close(field[0], new[0])
        torch.testing.assert_close(field[1], old[0])
    assert not torch.equal(policy.state.h[0], policy.state.h[1]), "the reset row forgot the last episode"


def test_a_controller_collects_real_sidewalk_episodes(world_model, tmp_path):
    controller = LinearController(world_model.feature_dim, 3)  # all-zero logits: always action 0
    store = collect(tmp_path / "store", "miniworld:Sidewalk", episodes=2, num_envs=2, seed=3,
                    policy=WorldModelPolicy(world_model, controller.act), progress=False)
    assert isinstance(store, EpisodeStore) and len(store) == 2
    assert all((e["action"] == 0).all() for e in store)


def test_loop_escape_replaces_the_action_only_where_a_frame_repeats():
    a, b, c = frames(3, 2)
    escape = LoopEscape(2, 3, actions=[0.0, 0.0, 1.0])  # escapes always move forward (action 2)
    stay = torch.tensor([0])
    # a and b are new; a repeats the frame two back; c is new; c repeats; b is four back, beyond the window
    assert [int(escape(f[None], stay)[0]) for f in (a, b, a, c, c, b)] == [0, 0, 2, 0, 2, 0]
    assert escape.escapes == 2
    escape.forget([0])
    assert int(escape(c[None], stay)[0]) == 0  # a new episode remembers nothing of the last
    never = LoopEscape(0, 3)
    assert [int(never(a[None], stay)[0]) for _ in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="3 probabilities"):
        LoopEscape(2, 3, actions=[0.5, 0.5])
    with pytest.raises(ValueError, match="window"):
        LoopEscape(-1, 3)


def test_an_escape_ends_a_real_loop_of_turns(world_model):
    """Left, right, left, ...: in the real env the agent sees the same two frames for ever."""
    from worldkit.envs import make_env

    def distance_walked(escape: LoopEscape | None) -> tuple[float, dict]:
        turns, env = itertools.cycle([0, 1]), make_env("miniworld:Sidewalk")
        env.reset(seed=0)
        start = env.unwrapped.agent.pos.copy()
        result = evaluate_in_real_env(world_model, lambda features: torch.tensor([next(turns)]), env, seed=0,
                                      max_steps=60, escape=escape)
        walked = float(np.linalg.norm(env.unwrapped.agent.pos - start))
        env.close()
        return walked, result

    walked, looping = distance_walked(None)
    assert walked == 0 and looping["lengths"] == [60] and looping["escapes"] == [0]  # stuck for good
    walked, escaping = distance_walked(LoopEscape(2, 3, [0.2, 0.2, 0.6], torch.Generator().manual_seed(0)))
    assert walked > 1.0 and escaping["escapes"][0] > 0  # each repeated frame got a random action: it moved on
