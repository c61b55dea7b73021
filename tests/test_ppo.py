"""The PPO learner: it learns, it bootstraps only truncated episodes, hooks reach every point,
and it refuses what it cannot handle with errors that say why."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from worldkit.checkpoints import from_pretrained, save_pretrained
from worldkit.controllers import (
    PPO,
    PPOAgent,
    PPOConfig,
    PPOHook,
    compute_gae,
    evaluate,
)
from worldkit.envs import make_vector_env
from worldkit.normalize import RunningMeanStd

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
TIMING_KEYS = {"sps", "rollout_time", "update_time"}


def small_config(**overrides) -> PPOConfig:
    """A few quick updates on CartPole-sized problems."""
    settings = dict(num_envs=2, num_steps=64, num_minibatches=4, update_epochs=2, total_steps=256, seed=3)
    return PPOConfig(**(settings | overrides))


class Corridor(gym.Env):
    """Walk a line from 0: action 1 steps right, 0 steps left; reaching +3 terminates (reward 1).

    Wrapped in a 4-step TimeLimit, most episodes are truncated and a few terminate.
    """

    observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return np.array([self.position], np.float32), {}

    def step(self, action):
        self.position += 1 if action == 1 else -1
        terminated = self.position >= 3
        return np.array([self.position], np.float32), float(terminated), terminated, False, {}


class MultiDiscreteCorridor(Corridor):
    action_space = gym.spaces.MultiDiscrete([2, 2])


def corridor_envs(num_envs: int = 2, env_class: type[gym.Env] = Corridor) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda: gym.wrappers.TimeLimit(env_class(), max_episode_steps=4)] * num_envs, autoreset_mode=SAME_STEP
    )


# ------------------------------------------------------------------------------- it learns


def test_solves_cartpole():
    config = PPOConfig(total_steps=40_960, num_envs=4, num_steps=128, num_minibatches=4, update_epochs=4,
                       learning_rate=2.5e-3, seed=1)
    envs = make_vector_env("CartPole-v1", config.num_envs)
    ppo = PPO(config, envs)
    history = ppo.learn(progress=False)
    envs.close()
    assert history[-1]["episodic_return"] >= 195, "mean of the last 100 training episodes"
    assert ppo.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 195


def test_balances_the_inverted_pendulum_with_continuous_actions():
    config = PPOConfig(total_steps=16_384, num_steps=1024, num_minibatches=16, seed=1)
    envs = make_vector_env("InvertedPendulum-v4", config.num_envs)
    ppo = PPO(config, envs)
    untrained = ppo.evaluate("InvertedPendulum-v4", episodes=5, deterministic=False)["mean_return"]
    history = ppo.learn(progress=False)
    trained = ppo.evaluate("InvertedPendulum-v4", episodes=5)
    envs.close()
    assert untrained < 30, untrained  # falls within a few steps
    assert history[-1]["episodic_return"] > 5 * untrained
    assert trained["mean_return"] >= 500, trained  # 1000 is the most an episode can give


# ----------------------------------------------------------------- truncation vs termination


def test_gae_bootstraps_a_truncated_step_and_not_a_terminated_one():
    # Two envs, three steps, gamma = lambda = 0.5. Both episodes end at step 1: env 0 is cut by
    # a time limit (its final state is worth 10), env 1 terminates (worth nothing after).
    rewards = torch.ones(3, 2)
    values = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    next_values = torch.tensor([[2.0, 2.0], [10.0, 0.0], [4.0, 4.0]])
    dones = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    advantages = compute_gae(rewards, values, next_values, dones, gamma=0.5, gae_lambda=0.5)
    # delta_t = r + 0.5 * next_value - value; A_t = delta_t + 0.25 * A_{t+1} unless step t ended.
    # env 0: deltas 1, 1 + 5 - 2 = 4, 1 + 2 - 3 = 0 -> A = 1 + 0.25 * 4, 4, 0
    # env 1: deltas 1, 1 + 0 - 2 = -1, 0            -> A = 1 - 0.25, -1, 0
    expected = torch.tensor([[2.0, 0.75], [4.0, -1.0], [0.0, 0.0]])
    torch.testing.assert_close(advantages, expected)


class ValueSnapshot(PPOHook):
    """Records the critic's values of obs and next_obs as GAE saw them (before the update)."""

    def on_rollout_end(self, rollout):
        with torch.no_grad():
            self.values, self.next_values = self.agent.value(rollout.obs), self.agent.value(rollout.next_obs)


def test_rollout_keeps_true_final_observations_and_bootstraps_only_truncations():
    config = small_config(normalize_obs=False, normalize_reward=False, num_steps=128, total_steps=256)
    snapshot = ValueSnapshot()
    ppo = PPO(config, corridor_envs(), [snapshot])
    snapshot.agent = ppo.agent
    ppo.learn(progress=False)
    r = ppo.rollout
    obs, next_obs = r.obs[..., 0], r.next_obs[..., 0]
    ended, terminated = r.dones.bool(), r.terminated.bool()
    truncated = ended & ~terminated
    assert terminated.any() and truncated.any()
    # While an episode runs, the next observation is the next step's observation; where it ended,
    # next_obs is the true last position and the next step starts again from 0.
    assert torch.equal(next_obs[:-1][~ended[:-1]], obs[1:][~ended[:-1]])
    assert torch.all(obs[1:][ended[:-1]] == 0)
    assert torch.all(next_obs[terminated] == 3)
    assert torch.all(next_obs[truncated].abs() <= 4) and torch.all(next_obs[truncated] < 3)
    assert torch.all(r.rewards[terminated] == 1) and torch.all(r.rewards[~terminated] == 0)
    # Where an episode ended, GAE's chain is cut, so the advantage is that step's TD error:
    # bootstrapped from the final observation's value if truncated, not at all if terminated.
    torch.testing.assert_close(r.values, snapshot.values)
    bootstrapped = r.rewards + config.gamma * snapshot.next_values - r.values
    torch.testing.assert_close(r.advantages[truncated], bootstrapped[truncated])
    torch.testing.assert_close(r.advantages[terminated], (r.rewards - r.values)[terminated])
    torch.testing.assert_close(r.returns, r.advantages + r.values)


# ---------------------------------------------------------------------------------- hooks


class ProbeHook(nn.Module, PPOHook):
    """A real hook touching every extension point."""

    name = "probe"

    def __init__(self, obs_dim: int):
        super().__init__()
        self.encoder = nn.Linear(obs_dim, 8)  # the policy's and value's input
        self.offset = nn.Parameter(torch.zeros(1))  # appears only in the auxiliary loss
        self.rollout_rewards: list[torch.Tensor] = []
        self.updates = 0

    def feature_module(self) -> nn.Module:
        return self.encoder

    def intrinsic_reward(self, obs, actions, next_obs, dones):
        assert obs.shape[:2] == actions.shape[:2] == next_obs.shape[:2] == dones.shape
        return torch.full(dones.shape, 0.5)

    def auxiliary_loss(self, minibatch, features):
        encoder_term = 10 * self.encoder(minibatch.next_obs).square().mean()
        return encoder_term + (self.offset - 1).square().sum()

    def on_rollout_end(self, rollout):
        self.rollout_rewards.append(rollout.rewards.clone())

    def on_update_end(self, metrics):
        self.updates += 1
        metrics["probe/updates"] = self.updates


def test_every_hook_point_is_called_and_reaches_training():
    config = small_config(normalize_reward=False, total_steps=1024, learning_rate=1e-2)
    envs = make_vector_env("CartPole-v1", config.num_envs)
    hook = ProbeHook(obs_dim=4)
    ppo = PPO(config, envs, [hook])
    encoder_before = hook.encoder.weight.detach().clone()
    history = ppo.learn(progress=False)
    envs.close()

    assert ppo.agent.features is hook.encoder
    assert len(hook.rollout_rewards) == len(history) == config.num_updates
    # CartPole pays 1 a step; the bonus of 0.5 was added before GAE and logged.
    assert all(torch.all(rewards == 1.5) for rewards in hook.rollout_rewards)
    assert all(m["intrinsic_reward/probe"] == pytest.approx(0.5) for m in history)
    # The auxiliary loss joined the backward pass: the parameter only it touches was trained,
    # and its gradient reached the feature module, whose output it shrinks.
    assert hook.offset.item() > 0.1
    assert not torch.equal(encoder_before, hook.encoder.weight)
    aux = [m["aux_loss/probe"] for m in history]
    assert aux[-1] < 0.5 * aux[0]
    assert [m["probe/updates"] for m in history] == list(range(1, len(history) + 1))


def test_only_one_hook_may_provide_features():
    envs = make_vector_env("CartPole-v1", 2)
    with pytest.raises(ValueError, match="at most one hook"):
        PPO(small_config(), envs, [ProbeHook(4), ProbeHook(4)])
    envs.close()


# --------------------------------------------------------------------------- clear errors


def test_a_discrete_env_given_to_a_policy_built_for_box_actions_is_refused():
    envs = make_vector_env("CartPole-v1", 2)
    box_agent = PPOAgent(envs.single_observation_space, gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
    with pytest.raises(ValueError, match=r"built for action space Box.*the env has Discrete\(2\)"):
        PPO(small_config(), envs, agent=box_agent)
    with pytest.raises(ValueError, match=r"the env has Discrete\(2\)"):
        evaluate(box_agent, "CartPole-v1", episodes=1)
    envs.close()


def test_unsupported_action_spaces_are_named():
    envs = corridor_envs(env_class=MultiDiscreteCorridor)
    with pytest.raises(ValueError, match=r"PPO acts in Discrete or 1-D Box spaces, not MultiDiscrete\(\[2 2\]\)"):
        PPO(small_config(), envs)


def test_the_env_must_autoreset_on_the_same_step_and_match_num_envs():
    next_step = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    with pytest.raises(ValueError, match="SAME_STEP"):
        PPO(small_config(), next_step)
    with pytest.raises(ValueError, match="num_envs is 4 but the vector env has 2"):
        PPO(small_config(num_envs=4), corridor_envs(2))
    with pytest.raises(TypeError, match="VectorEnv"):
        PPO(small_config(), gym.make("CartPole-v1"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_steps=100, num_envs=1, num_minibatches=32),
         r"\(100 \* 1 = 100\) must be divisible by num_minibatches \(32\)"),
        (dict(gamma=0.0), r"gamma must be in \(0, 1\]"),
        (dict(gamma=1.5), r"gamma must be in \(0, 1\]"),
        (dict(gae_lambda=-0.1), r"gae_lambda must be in \[0, 1\]"),
        (dict(learning_rate=0.0), "learning_rate must be positive"),
        (dict(num_steps=0), "num_steps must be at least 1"),
        (dict(total_steps=100), r"total_steps \(100\) is less than one rollout"),
        (dict(target_kl=0.0), "target_kl must be positive or None"),
        (dict(hidden_sizes=()), "hidden_sizes must be one or more positive widths"),
        (dict(ent_coef=-0.01), "ent_coef must be non-negative"),
        (dict(torch_threads=0), "torch_threads must be at least 1 or None"),
        (dict(activation="gelu"), "activation must be 'tanh' or 'relu'"),
        (dict(num_steps=64, num_envs=1, num_minibatches=64), "minibatches of at least 2"),
    ],
)
def test_config_refuses_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**overrides)


def test_config_defaults_are_cleanrls_for_mujoco():
    config = PPOConfig()
    assert (config.num_envs, config.num_steps, config.num_minibatches, config.update_epochs) == (1, 2048, 32, 10)
    assert (config.learning_rate, config.gamma, config.gae_lambda, config.clip_coef) == (3e-4, 0.99, 0.95, 0.2)
    assert (config.ent_coef, config.vf_coef, config.max_grad_norm, config.hidden_sizes) == (0.0, 0.5, 0.5, (64, 64))
    assert config.anneal_lr and config.clip_value_loss and config.norm_adv
    assert config.normalize_obs and config.normalize_reward and config.obs_clip == config.reward_clip == 10
    assert config.minibatch_size == 64


def test_compiling_without_a_cpp_compiler_is_refused_or_skipped(monkeypatch):
    """compile=True without a compiler fails at once with the fix; the default then stays eager."""
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    envs = corridor_envs()
    with pytest.raises(ValueError, match="needs a C\\+\\+ compiler"):
        PPO(small_config(compile=True), envs)
    counters.clear()
    PPO(small_config(total_steps=1_000_000), envs).learn(progress=False, callback=lambda metrics: False)  # one update
    envs.close()
    assert not counters["stats"]["unique_graphs"]  # long enough to compile, had it a compiler


# ------------------------------------------------------------------ determinism and state


def run_cartpole(seed: int) -> tuple[list[dict], dict[str, torch.Tensor]]:
    envs = make_vector_env("CartPole-v1", 2)
    ppo = PPO(small_config(seed=seed, torch_threads=1), envs)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not torch_threads, so that the check below can fail
    try:
        history = ppo.learn(progress=False)
        assert torch.get_num_threads() == 2  # torch_threads holds only while learning
    finally:
        torch.set_num_threads(threads)
    envs.close()
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in history], ppo.agent.state_dict()


def test_the_same_seed_gives_the_same_run():
    history_a, weights_a = run_cartpole(seed=5)
    history_b, weights_b = run_cartpole(seed=5)
    history_c, _ = run_cartpole(seed=6)
    assert history_a == history_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert history_a != history_c


def test_a_saved_state_resumes_training_where_it_stopped(tmp_path):
    config = small_config(total_steps=512)
    envs = make_vector_env("CartPole-v1", config.num_envs)
    first = PPO(config, envs)
    first.learn(progress=False, callback=lambda metrics: metrics["global_step"] < 256)  # stop halfway
    assert first.global_step == 256
    torch.save(first.state_dict(), tmp_path / "state.pt")

    second = PPO(config, envs)
    second.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert all(torch.equal(a, b) for a, b in zip(first.agent.state_dict().values(), second.agent.state_dict().values()))
    history = second.learn(progress=False)
    envs.close()
    assert [m["global_step"] for m in history] == [384, 512]
    assert history[0]["learning_rate"] == pytest.approx(config.learning_rate * (1 - 2 / 4))
    assert second.learn(progress=False) == []  # already at total_steps


def test_normalisation_statistics_are_checkpointed_and_frozen_in_evaluation(tmp_path):
    config = small_config(total_steps=256)
    envs = make_vector_env("Pendulum-v1", config.num_envs)
    ppo = PPO(config, envs)
    ppo.learn(progress=False)
    envs.close()
    agent = ppo.agent
    assert agent.obs_rms.count > 256 and agent.return_rms.count > 256
    stats = {k: v.clone() for k, v in agent.state_dict().items() if "rms" in k}

    first = evaluate(agent, "Pendulum-v1", episodes=2, seed=0)
    assert all(torch.equal(stats[k], v) for k, v in agent.state_dict().items() if "rms" in k)
    assert first == evaluate(agent, "Pendulum-v1", episodes=2, seed=0)
    assert first["lengths"] == [200, 200]

    loaded = PPOAgent.from_pretrained(save_pretrained(agent, tmp_path / "policy"))
    for key, value in stats.items():
        torch.testing.assert_close(loaded.state_dict()[key], value)  # stored as float32
    obs = torch.randn(16, 3)
    torch.testing.assert_close(loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True))


def test_rl_zoo_style_agent_options_survive_a_checkpoint(tmp_path):
    """ReLU, PyTorch's default initialisation and a narrow first policy (RL Zoo's HalfCheetah tuning)."""
    obs_space, action_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1, 1, (2,), np.float32)
    torch.manual_seed(0)
    agent = PPOAgent(obs_space, action_space, (8, 8), activation="relu", log_std_init=-2.0, ortho_init=False)
    assert torch.equal(agent.log_std, torch.full((2,), -2.0))
    assert agent.actor.layers[0].bias.abs().sum() > 0  # the orthogonal scheme zeroes biases
    x = torch.randn(64, 3)
    manual = agent.actor.layers[1](torch.relu(agent.actor.layers[0](x)))
    torch.testing.assert_close(agent.actor.layers[2](torch.relu(manual)), agent.actor(x))
    loaded = from_pretrained(save_pretrained(agent, tmp_path / "agent"))
    assert loaded.hparams["activation"] == "relu" and loaded.hparams["log_std_init"] == -2.0
    torch.testing.assert_close(loaded.actor(x), agent.actor(x))


def test_actions_are_clipped_only_on_the_way_to_the_env():
    space = gym.spaces.Box(-0.5, 0.5, (2,), np.float32)
    agent = PPOAgent(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), space)
    with torch.no_grad():
        agent.log_std.fill_(2.0)  # wide enough that many samples leave the bounds
        obs = torch.zeros(1000, 3)
        policy_out = agent.policy(obs)
        samples = agent.sample(policy_out, agent.noise((1000,), torch.Generator().manual_seed(0)))
        log_prob, _ = agent.log_prob_entropy(policy_out, samples)
    assert samples.abs().max() > 0.5
    assert agent.to_env(samples).abs().max() <= 0.5
    expected = torch.distributions.Normal(policy_out, agent.log_std.exp()).log_prob(samples).sum(-1)
    torch.testing.assert_close(log_prob, expected)
    assert agent.act(obs).abs().max() <= 0.5


def test_categorical_samples_follow_the_softmax_of_the_logits():
    agent = PPOAgent(gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(3))
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20_000, 3)
    samples = agent.sample(logits, agent.noise((20_000,), torch.Generator().manual_seed(0)))
    frequencies = torch.bincount(samples, minlength=3) / len(samples)
    torch.testing.assert_close(frequencies, logits[0].softmax(-1), atol=0.01, rtol=0)
    assert torch.equal(agent.mode(logits[:1]), torch.tensor([2]))


def test_evaluate_splits_episodes_evenly_between_vector_envs():
    envs = make_vector_env("CartPole-v1", 3)
    agent = PPOAgent(envs.single_observation_space, envs.single_action_space)
    result = evaluate(agent, envs, episodes=7, deterministic=False, seed=0)
    assert len(result["returns"]) == len(result["lengths"]) == 7
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    single = evaluate(agent, gym.make("CartPole-v1"), episodes=2, seed=0)
    assert len(single["returns"]) == 2
    envs.close()


def test_running_statistics_match_numpy_batch_by_batch_and_all_at_once():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4, 5))
    step_by_step, all_at_once = RunningMeanStd((5,)), RunningMeanStd((5,))
    for batch in data:
        step_by_step.update(batch)
    variances = all_at_once.update_each(data)
    flat = data.reshape(-1, 5)
    for stats in (step_by_step, all_at_once):
        np.testing.assert_allclose(stats.mean.numpy(), flat.mean(0), rtol=1e-6)
        np.testing.assert_allclose(stats.var.numpy(), flat.var(0), rtol=1e-5)
    np.testing.assert_allclose(variances[9], data[:10].reshape(-1, 5).var(0), rtol=1e-4)
    assert math.isclose(float(all_at_once.count), 200, rel_tol=1e-6)
    # What a rollout does with each observation: fold it in, then normalise with the new statistics.
    fresh = data[0] + 1.0
    expected = np.clip((fresh - (flat.sum(0) + fresh.sum(0)) / 204) / np.sqrt(np.vstack([flat, fresh]).var(0)), -1, 1)
    np.testing.assert_allclose(step_by_step.update_normalize(fresh, clip=1.0), expected, atol=1e-5)


@pytest.mark.parametrize("action_space, activation", [
    (gym.spaces.Box(-0.5, 0.5, (6,), dtype=np.float32), "tanh"),
    (gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32), "relu"),
    (gym.spaces.Discrete(4), "tanh"),
])
def test_the_rollouts_numpy_actor_acts_as_the_torch_policy(action_space, activation):
    torch.manual_seed(0)
    agent = PPOAgent(gym.spaces.Box(-np.inf, np.inf, (17,)), action_space, activation=activation, log_std_init=0.5)
    obs = np.random.default_rng(0).normal(size=(8, 17)).astype(np.float32)
    noise = agent.noise((8,), torch.Generator().manual_seed(1))
    actions, env_actions = agent.rollout_actor()(obs, noise.numpy())
    expected = agent.sample(agent.policy(torch.from_numpy(obs)), noise).detach()
    if agent.continuous:
        np.testing.assert_allclose(actions, expected.numpy(), atol=1e-5)
        np.testing.assert_allclose(env_actions, agent.to_env(expected).numpy(), atol=1e-5)
        assert np.abs(env_actions).max() == pytest.approx(float(action_space.high[0]))  # some were clipped
    else:
        np.testing.assert_array_equal(actions, expected.numpy())
