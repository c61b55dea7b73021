"""Pluggable dreaming: every controller learns in every world model and then acts in the real env."""

import gymnasium as gym
import lightning as L
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from worldkit.controllers import PPO, PPOConfig
from worldkit.controllers.cmaes import CMAESConfig, LinearController
from worldkit.controllers.cmaes import train_in_dream as cmaes_in_dream
from worldkit.controllers.dreamer import (
    DreamerActorCritic,
    DreamerConfig,
    DreamerLearner,
    lambda_returns,
)
from worldkit.controllers.dreamer import train_in_dream as dreamer_in_dream
from worldkit.data import SequenceDataModule, TransitionDataModule, collect
from worldkit.dream.driver import evaluate_in_real_env
from worldkit.dream.env import DreamEnv, real_start_states
from worldkit.dream.open_loop import open_loop_error
from worldkit.envs import make_env
from worldkit.envs.termination import termination_rule
from worldkit.models import RSSM, DynamicsEnsemble, LatentMLPWorldModel
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import WorldModel, select_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel
from worldkit.spaces import SpaceMismatchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(module: L.LightningModule, data: L.LightningDataModule, steps: int) -> None:
    L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0).fit(module, datamodule=data)


@pytest.fixture(scope="module")
def walker_store(tmp_path_factory):
    """Real Walker2d-v4 episodes under random actions (they fall within a few dozen steps)."""
    return collect(tmp_path_factory.mktemp("walker") / "store", "Walker2d-v4", steps=1500, seed=0, progress=False)


@pytest.fixture(scope="module")
def sidewalk_store(tmp_path_factory):
    """Two real Sidewalk episodes of 30x40 frames under random actions."""
    return collect(tmp_path_factory.mktemp("sidewalk") / "store", "miniworld:Sidewalk", episodes=2, seed=0,
                   size=(30, 40), progress=False)


@pytest.fixture(scope="module")
def world_models(walker_store, sidewalk_store):
    """Each world model kind, briefly trained where that is cheap, with start states from real episodes
    and the real env its controllers are scored in."""
    torch.manual_seed(0)
    rssm = RSSM(walker_store.observation_space, walker_store.action_space, size="tiny", lr=3e-3)
    fit(rssm, SequenceDataModule(walker_store, 16, batch_size=16, val_fraction=0.0), 30)
    mlp = LatentMLPWorldModel(17, 6, latent_dim=16, heads=True, action_space=walker_store.action_space)
    mlp.set_normalizer(torch.as_tensor(np.concatenate([e["obs"] for e in walker_store])))
    fit(mlp, TransitionDataModule(walker_store, batch_size=64, val_fraction=0.0), 60)

    vae_mdn = VAEMDNWorldModel.compose(ConvVAE((30, 40, 3), latent_dim=8, channels=(8, 16)),
                                       MDNRNN(latent_dim=8, hidden_dim=16))
    with torch.no_grad():
        vae_mdn.mdnrnn.outcome_head[-1].bias[-1] = -4.0  # an untrained M whose dreams rarely end
    models = {"rssm": (rssm.eval(), walker_store, "Walker2d-v4"), "mlp": (mlp.eval(), walker_store, "Walker2d-v4"),
              "vae_mdn": (vae_mdn, sidewalk_store, "miniworld:Sidewalk")}
    return {name: (model, real_start_states(model, store, steps_per_episode=40), spec)
            for name, (model, store, spec) in models.items()}


def real_env(spec: str) -> gym.Env:
    return make_env(spec, size=(30, 40)) if spec.startswith("miniworld") else make_env(spec)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def train_ppo(world_model, starts):
    dreams = DreamEnv(world_model, starts, 8, horizon=16)
    ppo = PPO(PPOConfig(total_steps=256, num_envs=8, num_steps=16, num_minibatches=2, update_epochs=2), dreams)
    before = snapshot(ppo.agent)
    ppo.learn(progress=False)
    return ppo.agent, before, lambda f: ppo.agent.act(f, deterministic=True)


def train_cmaes(world_model, starts):
    before = snapshot(LinearController.for_space(world_model.feature_dim, world_model.action_space))
    config = CMAESConfig(population=4, generations=2, rollouts=2, horizon=10, sigma0=0.5)
    controller = cmaes_in_dream(world_model, starts, config, progress=False).controller
    return controller, before, controller.act


def train_dreamer(world_model, starts):
    actor_critic = DreamerActorCritic(world_model.feature_dim, world_model.action_space, hidden=32, layers=1)
    before = snapshot(actor_critic)
    dreamer_in_dream(world_model, starts, DreamerConfig(horizon=5, actor_lr=1e-3, critic_lr=1e-3), 2,
                     batch_size=16, actor_critic=actor_critic)
    return actor_critic, before, lambda f: actor_critic.act(f, deterministic=True)


CONTROLLERS = {"ppo": train_ppo, "cmaes": train_cmaes, "dreamer": train_dreamer}


@pytest.mark.parametrize("model_name", ["rssm", "mlp", "vae_mdn"])
@pytest.mark.parametrize("controller_name", list(CONTROLLERS))
def test_every_controller_learns_in_every_world_model(world_models, controller_name, model_name):
    world_model, starts, spec = world_models[model_name]
    assert isinstance(world_model, WorldModel)
    torch.manual_seed(0)
    controller, before, act = CONTROLLERS[controller_name](world_model, starts)
    assert any(not torch.equal(a, b) for a, b in zip(before, controller.parameters())), "training changed nothing"
    env = real_env(spec)
    try:
        score = evaluate_in_real_env(world_model, act, env, 1, seed=3, max_steps=60)
    finally:
        env.close()
    assert np.isfinite(score["mean_return"]) and 1 <= score["lengths"][0] <= 60


@pytest.mark.parametrize("model_name", ["rssm", "mlp", "vae_mdn"])
def test_dream_env_passes_gymnasiums_checks(world_models, model_name):
    world_model, starts, _ = world_models[model_name]
    check_env(DreamEnv(world_model, starts, 1, horizon=20).single_env(), skip_render_check=True)


def test_dream_env_is_batched_with_same_step_autoreset(world_models):
    world_model, starts, _ = world_models["rssm"]
    dreams = DreamEnv(world_model, starts, 5, horizon=3, sample_ends=False)
    obs, _ = dreams.reset(seed=0)
    assert obs.shape == (5, world_model.feature_dim) and obs.dtype == np.float32
    actions = np.zeros((5, 6), dtype=np.float32)
    for step in range(1, 4):
        obs, reward, terminated, truncated, infos = dreams.step(actions)
        assert reward.shape == (5,) and not terminated.any()
    assert truncated.all() and infos["_final_obs"].all()  # the horizon ends every dream together
    assert infos["final_obs"].shape == (5,) and infos["final_obs"][0].dtype == np.float32
    assert not np.array_equal(np.stack(infos["final_obs"]), obs)  # fresh starts replace the last states
    single = dreams.single_env()
    single.reset(seed=0)
    last = [single.step(np.zeros(6, np.float32)) for _ in range(3)][-1]
    assert last[3] and last[0].dtype == np.float32 and last[0].shape == (world_model.feature_dim,)
    ends = DreamEnv(world_model, starts, 64, horizon=1000)  # an untrained continue head ends some dreams
    ends.reset(seed=0)
    assert any(ends.step(np.zeros((64, 6)))[2].any() for _ in range(20))


def test_a_pessimistic_dream_pays_for_the_ensembles_uncertainty(walker_store):
    torch.manual_seed(0)
    ensemble = DynamicsEnsemble(walker_store.observation_space, walker_store.action_space, ensemble_size=3,
                                hidden_sizes=(16,)).eval()
    starts = real_start_states(ensemble, walker_store)
    plain, pessimistic = (DreamEnv(ensemble, starts, 8, penalty=penalty) for penalty in (0.0, 2.0))
    for dreams in (plain, pessimistic):
        dreams.reset(seed=0)
    actions = np.full((8, 6), 0.5, np.float32)
    uncertainty = ensemble.uncertainty(plain._state, torch.as_tensor(actions))
    assert (uncertainty > 0).all()  # untrained members disagree
    reward = plain.step(actions)[1]
    np.testing.assert_allclose(pessimistic.step(actions)[1], reward - 2.0 * uncertainty.numpy(), rtol=1e-5, atol=1e-6)
    # the spread reuses the step's own prediction, but never one made with weights since changed
    obs, action = pessimistic._state.obs, torch.as_tensor(actions)
    ensemble.predict(obs, action)
    with torch.no_grad():
        ensemble.layers[-1].weight.mul_(3.0)
    fresh, _ = ensemble(obs, action)
    torch.testing.assert_close(ensemble.disagreement(obs, action), fresh.var(0, unbiased=False).mean(-1))
    ensemble.predict(obs, action)
    ensemble.input_mean.add_(1.0)  # a new normaliser changes the prediction as much
    fresh, _ = ensemble(obs, action)
    torch.testing.assert_close(ensemble.disagreement(obs, action), fresh.var(0, unbiased=False).mean(-1))


def test_a_dream_ends_by_the_envs_own_rule_where_one_is_given(walker_store):
    torch.manual_seed(0)
    ensemble = DynamicsEnsemble(walker_store.observation_space, walker_store.action_space, ensemble_size=3,
                                hidden_sizes=(16,)).eval()
    rule = termination_rule(gym.make("Walker2d-v4"))
    dreams = DreamEnv(ensemble, real_start_states(ensemble, walker_store), 64, ends=rule)
    dreams.reset(seed=0)
    ended = []
    for _ in range(5):
        obs, _, terminated, truncated, infos = dreams.step(np.zeros((64, 6), np.float32))
        last = np.stack([infos["final_obs"][i] if terminated[i] or truncated[i] else obs[i] for i in range(64)])
        np.testing.assert_array_equal(terminated, rule(torch.as_tensor(last)).numpy())
        ended.extend(terminated)
    assert 0 < np.mean(ended) < 1  # some dreamed walkers fell, some did not


class PointMass(torch.nn.Module):
    """A world model written in a test, as a user would plug one in: x' = x + 0.1 a, reward -|x'|.
    Controllers that learn should steer x to 0."""

    env_spec = None
    feature_dim = 1

    def __init__(self, discrete: bool):
        super().__init__()
        self.action_space = gym.spaces.Discrete(2) if discrete else gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def initial_state(self, batch_size):
        return (torch.zeros(batch_size, 1),)

    def observe(self, state, action, obs):
        return (torch.as_tensor(obs, dtype=torch.float32),)

    def imagine(self, state, action, *, temperature=1.0, generator=None):
        push = (action.float() * 2 - 1)[:, None] if isinstance(self.action_space, gym.spaces.Discrete) else action
        x = state[0] + 0.1 * push
        return (x,), -x.abs().squeeze(-1), torch.ones(len(x))

    def features(self, state):
        return state[0]

    def decode(self, state):
        return state[0]


class PointMassWithoutGradients(PointMass):
    """The same, imagined without a graph (as a dynamics ensemble does): Box actions need REINFORCE."""

    @torch.no_grad()
    def imagine(self, state, action, *, temperature=1.0, generator=None):
        return super().imagine(state, action)


def dreamed_return(model, act, starts, horizon: int = 10) -> float:
    state, total = starts, 0.0
    with torch.no_grad():
        for _ in range(horizon):
            state, reward, _ = model.imagine(state, act(model.features(state)))
            total += reward.mean().item()
    return total


@pytest.mark.parametrize("model_class, discrete, return_critic",
                         [(PointMass, False, "slow"), (PointMass, True, "slow"), (PointMass, False, "fast"),
                          (PointMassWithoutGradients, False, "slow")],
                         ids=["gradients through the dynamics", "REINFORCE", "returns from the fast critic",
                              "REINFORCE for Box actions in a model without gradients"])
def test_dreamer_actor_critic_learns_to_steer_a_plugged_in_world_model(model_class, discrete, return_critic):
    torch.manual_seed(0)
    model = model_class(discrete)
    assert isinstance(model, WorldModel)
    assert DreamerLearner(model, DreamerConfig()).through_dynamics == (model_class is PointMass and not discrete)
    starts = (torch.linspace(-1, 1, 256)[:, None],)
    actor_critic = DreamerActorCritic(1, model.action_space, hidden=32, layers=1)
    before = dreamed_return(model, lambda f: actor_critic.act(f, deterministic=True), starts)
    config = DreamerConfig(horizon=10, actor_lr=3e-3, critic_lr=3e-3, entropy=1e-4, return_critic=return_critic)
    dreamer_in_dream(model, starts, config, 150, batch_size=128, actor_critic=actor_critic)
    after = dreamed_return(model, lambda f: actor_critic.act(f, deterministic=True), starts)
    assert after > before + 1.0, (before, after)  # the best policy gains about 2.8 over standing still


def test_cmaes_steers_a_box_action_world_model():
    model = PointMass(discrete=False)
    starts = (torch.linspace(-1, 1, 16)[:, None],)
    config = CMAESConfig(population=8, generations=10, rollouts=16, horizon=10, sigma0=1.0, temperature=0.0)
    controller = cmaes_in_dream(model, starts, config, progress=False).controller
    assert controller.hparams["action_space"]["type"] == "Box"
    standing = dreamed_return(model, lambda f: torch.zeros(len(f), 1), starts)
    actions = controller.act(torch.tensor([[-0.5], [0.5]]))
    assert actions[0, 0] > 0 > actions[1, 0] and actions.abs().max() <= 1  # pushes towards 0, within bounds
    assert dreamed_return(model, controller.act, starts) > standing + 1.0


def test_bf16_imagination_casts_features_once_and_keeps_continues_out_of_the_actors_gradient(world_models):
    rssm, starts, _ = world_models["rssm"]
    learner = DreamerLearner(rssm, DreamerConfig(horizon=3, hidden=16, layers=1))
    with torch.autocast("cpu", torch.bfloat16):
        features, rewards, continues, *_ = learner._imagine(select_state(starts, torch.arange(8)))
    assert features.dtype == torch.bfloat16 and features.shape[:2] == (4, 8)
    assert rewards.requires_grad and not continues.requires_grad
    with torch.autocast("cpu", torch.bfloat16, enabled=False):
        assert learner._imagine(select_state(starts, torch.arange(8)))[0].dtype == torch.float32


def test_the_actor_critic_imagines_from_a_random_subset_of_starts_when_asked(world_models):
    rssm, starts, _ = world_models["rssm"]
    learner = DreamerLearner(rssm, DreamerConfig(horizon=3, hidden=16, layers=1, starts=5))
    imagine, seen = learner._imagine, []
    learner._imagine = lambda state: seen.append(state) or imagine(state)
    torch.manual_seed(0)
    learner.train_step(select_state(starts, torch.arange(12)))
    learner.train_step(select_state(starts, torch.arange(4)))  # fewer than asked: all of them
    assert [len(state[0]) for state in seen] == [5, 4]
    flat = lambda state: torch.cat([field.flatten(1).float() for field in state], 1)
    pool, drawn = flat(select_state(starts, torch.arange(12))), flat(seen[0])
    rows = [next(i for i in range(12) if torch.equal(row, pool[i])) for row in drawn]
    assert len(set(rows)) == 5 and rows != list(range(5))  # five different rows, drawn rather than the first five
    with pytest.raises(ValueError, match="starts must be positive"):
        DreamerConfig(starts=0)


def test_open_loop_error_compares_frames_on_the_decoders_scale(world_models, sidewalk_store):
    model, episode = world_models["vae_mdn"][0], sidewalk_store.episode(0)
    model_error, still_error = open_loop_error(model, [episode], 0.5, context=2, horizon=4, stride=50)
    frames, starts = episode["obs"] / 255.0, np.arange(2, len(episode["action"]) - 4, 50)
    expected = [np.mean(((frames[starts + k + 1] - frames[starts]) / 0.5) ** 2) for k in range(4)]
    np.testing.assert_allclose(still_error, expected, rtol=1e-5)  # one number per step ahead, frames in [0, 1]
    assert model_error.shape == (4,) and np.all((model_error >= 0) & (model_error <= 4))


def test_lambda_returns_match_their_definition():
    rewards, continues = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.0]])
    values = torch.tensor([[10.0], [20.0], [30.0]])
    returns = lambda_returns(rewards, continues, values, gamma=0.9, lam=0.5)
    last = 2.0  # the second step ends the episode: nothing after it counts
    first = 1.0 + 0.9 * (0.5 * 20.0 + 0.5 * last)
    torch.testing.assert_close(returns, torch.tensor([[first], [last]]))


def test_bad_input_gets_clear_errors(world_models):
    rssm, starts, _ = world_models["rssm"]
    dreams = DreamEnv(rssm, starts, 4)
    dreams.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions of shape \(4, 6\)"):
        dreams.step(np.zeros((4, 3)))
    with pytest.raises(SpaceMismatchError, match="acts in Discrete"):
        evaluate_in_real_env(world_models["vae_mdn"][0], lambda f: f, "Walker2d-v4")
    with pytest.raises(SpaceMismatchError, match=r"observations of shape \(17,\).*\(24,\)"):
        evaluate_in_real_env(rssm, lambda f: f, "dmc:walker-walk")
    with pytest.raises(ValueError, match="no reward or continue head"):
        DreamEnv(LatentMLPWorldModel(17, 6), (torch.zeros(3, 32),))
    with pytest.raises(ValueError, match="penalty needs a world model that knows its uncertainty"):
        DreamEnv(rssm, starts, penalty=1.0)
    with pytest.raises(ValueError, match="start_states is empty"):
        DreamEnv(rssm, tuple(field[:0] for field in starts))
    with pytest.raises(ValueError, match="built for 3 features"):
        dreamer_in_dream(rssm, starts, DreamerConfig(), 1, actor_critic=DreamerActorCritic(3, rssm.action_space))
    with pytest.raises(ValueError, match="critic is 'mse', the config asks for 'twohot'"):
        dreamer_in_dream(rssm, starts, DreamerConfig(), 1,
                         actor_critic=DreamerActorCritic(rssm.feature_dim, rssm.action_space, critic="mse"))
    with pytest.raises(ValueError, match="critic must be 'twohot' or 'mse'"):
        DreamerConfig(critic="huber")
    with pytest.raises(ValueError, match="return_critic must be 'slow' or 'fast'"):
        DreamerConfig(return_critic="target")


def test_stable_baselines3_trains_in_a_dream_and_acts_in_the_real_env(tmp_path, monkeypatch):
    """Outside code in the single-env view: SB3's PPO learns only in the shipped walker-walk
    RSSM's dream, then acts in the real env through worldkit, as docs/dreaming.md shows."""
    from stable_baselines3 import PPO as SB3PPO

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3 makes its log folder there, not in the system's temp

    from worldkit.data.driver import drive
    from worldkit.dream.driver import evaluate_in_real_env
    from worldkit.dream.env import DreamEnv, real_start_states
    from worldkit.envs import make_env
    from worldkit.models import RSSM

    model = RSSM.from_pretrained("dmc-walker-rssm")
    episodes = []
    with make_env("dmc:walker-walk", action_repeat=2) as env:
        drive(env, None, seeds=[0], max_steps=100, on_episode=episodes.append)
    dream = DreamEnv(model, real_start_states(model, episodes), horizon=50).single_env()
    agent = SB3PPO("MlpPolicy", dream, n_steps=256, batch_size=64, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.learn(1024)
    assert agent.num_timesteps >= 1024
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, agent.policy.parameters()))

    def act(features: torch.Tensor) -> np.ndarray:
        return agent.predict(features.cpu().numpy(), deterministic=True)[0]

    with make_env("dmc:walker-walk", action_repeat=2) as env:
        result = evaluate_in_real_env(model, act, env, episodes=2, seed=0, max_steps=50)
    assert result["episodes"] == 2 and np.isfinite(result["mean_return"])
