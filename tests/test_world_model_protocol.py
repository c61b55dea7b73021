"""Every registered world model keeps the WorldModel protocol: shapes, seeded imagination,
exact checkpoints, and a DreamEnv gymnasium accepts.

The tests run over every class in ``WORLD_MODELS``, so a class declared with ``@world_model`` is
checked as soon as it has an entry in ``TINY`` below: a small factory building it with tiny real
spaces. A registered class without one fails here rather than going unchecked. ``DriftWorldModel``
shows how a user adds a world model of their own.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

import worldkit.models
from worldkit.checkpoints import checkpointable, from_pretrained, save_pretrained
from worldkit.dream.env import DreamEnv
from worldkit.models import (
    MDNRNN,
    RSSM,
    WORLD_MODELS,
    ConvVAE,
    DynamicsEnsemble,
    LatentMLPWorldModel,
    VAEMDNWorldModel,
    WorldModel,
    world_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BATCH = 3


class DriftState(NamedTuple):
    x: torch.Tensor


@world_model
@checkpointable
class DriftWorldModel(nn.Module):
    """A world model as a user plugs one in: x' = x + W [x, a] + noise * temperature, reward -|x'|.

    ``hparams`` (its ``__init__`` arguments) is what ``from_pretrained`` rebuilds it from.
    """

    env_spec = None

    def __init__(self, obs_dim: int = 3, action_dim: int = 2):
        super().__init__()
        self.hparams = {"obs_dim": obs_dim, "action_dim": action_dim}
        self.dynamics = nn.Linear(obs_dim + action_dim, obs_dim)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)

    @property
    def feature_dim(self) -> int:
        return self.hparams["obs_dim"]

    def initial_state(self, batch_size: int) -> DriftState:
        return DriftState(torch.zeros(batch_size, self.feature_dim))

    def observe(self, state: DriftState, action: torch.Tensor | None, obs: torch.Tensor) -> DriftState:
        return DriftState(torch.as_tensor(obs, dtype=torch.float32))

    def imagine(self, state: DriftState, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[DriftState, torch.Tensor, torch.Tensor]:
        noise = torch.randn(state.x.shape, generator=generator) * temperature
        x = state.x + self.dynamics(torch.cat([state.x, action.float()], -1)) + noise
        return DriftState(x), -x.abs().sum(-1), torch.sigmoid(3 - x.abs().sum(-1))

    def features(self, state: DriftState) -> torch.Tensor:
        return state.x

    def decode(self, state: DriftState) -> torch.Tensor:
        return state.x


@dataclass
class Tiny:
    """A world model and the space of the observations it filters (the protocol has no such attribute)."""

    model: nn.Module
    observation_space: gym.spaces.Box


def box(*shape: int) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, shape, np.float32)


FRAMES = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)

TINY: dict[type, Callable[[], Tiny]] = {
    LatentMLPWorldModel: lambda: Tiny(LatentMLPWorldModel(5, 2, latent_dim=4, hidden=8, heads=True), box(5)),
    DynamicsEnsemble: lambda: Tiny(DynamicsEnsemble(box(4), gym.spaces.Discrete(3), ensemble_size=3,
                                                    hidden_sizes=(16,)), box(4)),
    RSSM: lambda: Tiny(RSSM(box(6), gym.spaces.Box(-1, 1, (2,), np.float32), size="tiny"), box(6)),
    VAEMDNWorldModel: lambda: Tiny(VAEMDNWorldModel.compose(ConvVAE(FRAMES.shape, latent_dim=4, channels=(4, 8)),
                                                            MDNRNN(latent_dim=4, num_actions=3, hidden_dim=8)), FRAMES),
    DriftWorldModel: lambda: Tiny(DriftWorldModel(3, 2), box(3)),
}
"""how to build each registered world model small"""

DETERMINISTIC = {LatentMLPWorldModel}
"""models whose imagination ignores the generator by design"""


def registered() -> list[type]:
    """Every class in WORLD_MODELS once worldkit.models' modules are all imported."""
    for module in pkgutil.iter_modules(worldkit.models.__path__):
        importlib.import_module(f"worldkit.models.{module.name}")
    return list(dict.fromkeys(WORLD_MODELS.values()))


MODELS = registered()


@pytest.fixture(params=MODELS, ids=lambda cls: cls.__name__)
def tiny(request) -> Tiny:
    cls = request.param
    if cls not in TINY:
        pytest.fail(f"{cls.__module__}.{cls.__qualname__} is a registered world model with no factory in "
                    f"{__file__}: add a TINY entry building it small, so the protocol checks cover it")
    torch.manual_seed(0)
    built = TINY[cls]()
    assert type(built.model) is cls, f"TINY[{cls.__name__}] builds a {type(built.model).__name__}"
    return Tiny(built.model.eval(), built.observation_space)


def observations(space: gym.spaces.Box, n: int, seed: int = 0) -> torch.Tensor:
    space.seed(seed)
    return torch.as_tensor(np.stack([space.sample() for _ in range(n)]))


def actions(space: gym.Space, n: int, seed: int = 0) -> torch.Tensor:
    space.seed(seed)
    sampled = np.stack([space.sample() for _ in range(n)])
    return torch.as_tensor(sampled, dtype=torch.long if isinstance(space, gym.spaces.Discrete) else torch.float32)


def start(tiny: Tiny, n: int = BATCH):
    """States after a first observation and one more observed step (``observe`` has no generator:
    a model that samples there uses the global RNG, seeded here)."""
    torch.manual_seed(0)
    model, obs = tiny.model, observations(tiny.observation_space, n)
    first = model.observe(model.initial_state(n), None, obs)
    return model.observe(first, actions(model.action_space, n), observations(tiny.observation_space, n, seed=1))


def dream(model, state, steps: int = 3, seed: int = 0) -> list[torch.Tensor]:
    """Everything imagined over ``steps`` steps with one generator seeded ``seed``: states, rewards, continues."""
    generator, out = torch.Generator().manual_seed(seed), []
    for step in range(steps):
        action = actions(model.action_space, len(state[0]), seed=step)
        state, reward, continues = model.imagine(state, action, generator=generator)
        out += [*state, reward, continues]
    return out


@torch.no_grad()
def test_calls_return_the_protocols_shapes(tiny):
    model, space = tiny.model, tiny.observation_space
    assert isinstance(model, WorldModel)
    assert isinstance(model.action_space, gym.Space)
    obs = observations(space, BATCH)
    state = model.observe(model.initial_state(BATCH), None, obs)
    assert all(field.shape[0] == BATCH for field in state), [tuple(field.shape) for field in state]
    state = model.observe(state, actions(model.action_space, BATCH), obs)
    assert all(field.shape[0] == BATCH for field in state)
    next_state, reward, continues = model.imagine(state, actions(model.action_space, BATCH),
                                                  generator=torch.Generator().manual_seed(0))
    assert type(next_state) is type(state) and [f.shape for f in next_state] == [f.shape for f in state]
    assert reward.shape == (BATCH,) and continues.shape == (BATCH,)
    assert ((continues >= 0) & (continues <= 1)).all(), continues
    assert model.features(next_state).shape == (BATCH, model.feature_dim)
    decoded = model.decode(next_state)
    assert decoded.shape == (BATCH, *space.shape)
    if len(space.shape) == 3:  # frames
        assert decoded.is_floating_point() and ((decoded >= 0) & (decoded <= 1)).all()


@torch.no_grad()
def test_seeded_imagination_is_reproducible_and_seeds_differ(tiny):
    model, state = tiny.model, start(tiny)
    torch.manual_seed(1)  # the generator alone decides: the global RNG's state must not matter
    first = dream(model, state, seed=7)
    torch.manual_seed(2)
    again = dream(model, state, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = dream(model, state, seed=8)
    differs = any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert differs != (type(model) in DETERMINISTIC), (
        "a model marked deterministic imagines differently by seed" if differs else
        "two generator seeds gave identical dreams at temperature 1")


@torch.no_grad()
def test_checkpoint_round_trip_is_bit_exact(tiny, tmp_path):
    model = tiny.model
    loaded = from_pretrained(save_pretrained(model, tmp_path / "model"))
    assert type(loaded) is type(model) and not loaded.training
    state, restored = start(tiny), start(Tiny(loaded, tiny.observation_space))
    assert all(torch.equal(a, b) for a, b in zip(state, restored, strict=True))
    assert torch.equal(model.features(state), loaded.features(restored))
    assert torch.equal(model.decode(state), loaded.decode(restored))
    assert all(torch.equal(a, b) for a, b in zip(dream(model, state), dream(loaded, restored), strict=True))


def test_dream_env_passes_gymnasiums_checks(tiny):
    """Gymnasium has no checker for vector envs: the batched contract is checked here by hand,
    and ``check_env`` runs on the one-dream env."""
    model, num_envs = tiny.model, 2
    with torch.no_grad():
        starts = start(tiny, n=4)
    envs = DreamEnv(model, starts, num_envs, horizon=3)
    assert isinstance(envs, gym.vector.VectorEnv)
    obs, info = envs.reset(seed=0)
    assert isinstance(info, dict) and obs.dtype == np.float32 and envs.observation_space.contains(obs)
    assert obs.shape == (num_envs, model.feature_dim)
    envs.action_space.seed(0)
    for _ in range(4):  # past the horizon, so every dream resets at least once
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert obs.dtype == np.float32 and envs.observation_space.contains(obs)
        assert reward.shape == (num_envs,) and np.issubdtype(reward.dtype, np.floating) and np.isfinite(reward).all()
        assert terminated.shape == truncated.shape == (num_envs,)
        assert terminated.dtype == truncated.dtype == np.bool_ and isinstance(info, dict)

    def first_steps(seed: int) -> list[np.ndarray]:
        envs.action_space.seed(seed)
        return [envs.reset(seed=seed)[0], *envs.step(envs.action_space.sample())[:4]]

    assert all(np.array_equal(a, b) for a, b in zip(first_steps(5), first_steps(5), strict=True))
    check_env(envs.single_env(), skip_render_check=True)
