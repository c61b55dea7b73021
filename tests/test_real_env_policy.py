"""RealEnvPolicy: a dream-trained controller acting on real frames through its world model."""

import numpy as np
import pytest
import torch

from worldkit.controllers.cmaes import LinearController
from worldkit.data import EpisodeStore, collect
from worldkit.dream.real_env_policy import RealEnvPolicy
from worldkit.dream.vae_mdn import VAEMDNWorldModel
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.vae import ConvVAE


@pytest.fixture
def world_model() -> VAEMDNWorldModel:
    torch.manual_seed(0)
    return VAEMDNWorldModel.compose(ConvVAE(channels=(8, 16), latent_dim=6), MDNRNN(latent_dim=6, hidden_dim=10))


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 60, 80, 3), dtype=np.uint8)


def test_each_env_keeps_its_own_state_and_a_new_episode_starts_fresh(world_model):
    controller = LinearController(world_model.feature_dim, 3).load_vector(torch.randn(world_model.feature_dim * 3 + 3))
    policy = RealEnvPolicy(world_model, controller.act)
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
                    policy=RealEnvPolicy(world_model, controller.act), progress=False)
    assert isinstance(store, EpisodeStore) and len(store) == 2
    assert all((e["action"] == 0).all() for e in store)
