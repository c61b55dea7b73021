"""Model-based PPO (after the adaptive-imagination write-up): the ensemble learns real Hopper
dynamics and its confidence drives the number of dreams, imagined rollouts get advantages of their
own, beta follows the return's trend, imagined samples reach PPO's update with their weights, and
the recipe runs end to end."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldkit.controllers import PPO, PPOAgent, PPOConfig
from worldkit.controllers.imagination import per_trajectory_gae, rollouts_for_confidence
from worldkit.controllers.mbppo import AdaptiveImagination, ImaginationConfig
from worldkit.dream.open_loop import open_loop_error
from worldkit.envs import make_vector_env
from worldkit.intrinsic import RND, AdaptiveBeta
from worldkit.models.ensemble import DynamicsEnsemble
from worldkit.models.protocol import WorldModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------ the ensemble and its confidence


def test_held_out_error_falls_on_real_hopper_and_confidence_and_rollouts_follow():
    envs = make_vector_env("Hopper-v4", 1)
    config = ImaginationConfig(ensemble_size=3, model_hidden=(64, 64), model_train_steps=40, curiosity="none", seed=0)
    hook = AdaptiveImagination(config, envs.single_observation_space, envs.single_action_space)
    recorded = hook.record(envs)
    recorded.reset(seed=0)
    recorded.action_space.seed(0)
    for _ in range(3000):  # random actions: short episodes, so the done head sees terminations
        recorded.step(recorded.action_space.sample())
    recorded.close()
    assert len(hook.replay) == 3000 and hook.replay.held_out()["obs"].shape == (300, 11)
    assert hook.replay.held_out()["terminated"].sum() > 5

    torch.manual_seed(0)
    agent = PPOAgent(envs.single_observation_space, envs.single_action_space)
    starts = hook.replay.latest(500)["obs"]
    held_out = hook.replay.held_out()
    hook.model.set_normalizer(*(hook.replay.train_rows()[k] for k in ("obs", "action", "reward", "next_obs")))
    hook.held_out_loss = hook.model.held_out_loss(held_out)
    losses, disagreements, confidences = [], [], {"loss": [], "disagreement": [], "both": []}
    for round in range(9):
        if round:
            hook.train_model()
        losses.append(hook.held_out_loss)
        for kind, values in confidences.items():
            values.append(hook.measure_confidence(agent, starts, kind=kind))
        disagreements.append(hook.metrics["mbppo/disagreement"])

    assert losses[-1] < 0.5 * losses[1] < losses[0], losses  # it generalises to transitions it never fitted
    assert confidences["loss"] == pytest.approx([math.exp(-loss) for loss in losses])  # the write-up's confidence
    assert confidences["loss"][-1] > confidences["loss"][0] + 0.4
    # Untrained members all predict about zero, so they agree: disagreement alone is blind then,
    # and 'both' (the lower of the two) is what keeps an untrained model from looking sure.
    assert confidences["disagreement"][0] > confidences["loss"][0] + 0.3
    assert all(both <= by_loss for both, by_loss in zip(confidences["both"], confidences["loss"]))
    # Once the members fit the data, their disagreement shrinks as the held-out error does.
    assert disagreements[-1] < 0.6 * max(disagreements) and confidences["disagreement"][-1] > 0.75
    assert confidences["both"][-1] > confidences["both"][0] + 0.4
    counts = [rollouts_for_confidence(c, 10, 100) for c in confidences["both"]]
    assert counts[0] < 30 and counts[-1] > 70  # the number of dreams follows the confidence
    assert all((b - a) * (y - x) >= 0 for a, b, x, y in
               zip(counts, counts[1:], confidences["both"], confidences["both"][1:]))
    assert rollouts_for_confidence(0.0, 10, 100) == 10 and rollouts_for_confidence(1.0, 10, 100) == 100
    assert rollouts_for_confidence(0.525, 10, 100) == 55


def test_the_ensemble_is_a_world_model_and_saves_and_loads(tmp_path):
    model = DynamicsEnsemble(gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Discrete(2), ensemble_size=2,
                             hidden_sizes=(16,))
    model.env_spec = "gym:CartPole-v1"
    assert isinstance(model, WorldModel) and model.feature_dim == 4
    state = model.observe(model.initial_state(3), None, torch.randn(3, 4))
    next_state, reward, continue_prob = model.imagine(state, torch.tensor([0, 1, 1]), temperature=0)
    assert next_state.obs.shape == (3, 4) and reward.shape == continue_prob.shape == (3,)
    assert torch.all((0 <= continue_prob) & (continue_prob <= 1))
    assert torch.equal(model.decode(next_state), next_state.obs)  # the state is the observation
    loaded = DynamicsEnsemble.from_pretrained(model.save_pretrained(tmp_path / "ensemble"))
    assert loaded.env_spec == "gym:CartPole-v1" and loaded.ensemble_size == 2
    torch.testing.assert_close(loaded.imagine(state, torch.tensor([0, 1, 1]), temperature=0)[0].obs, next_state.obs)


def test_the_ensemble_trains_standalone_with_lightning_on_an_episode_store(tmp_path):
    import lightning as L

    from worldkit.data import TransitionDataModule, collect

    store = collect(tmp_path / "store", "Hopper-v4", steps=2000, seed=0, progress=False)
    data = TransitionDataModule(store, batch_size=128, seed=0)
    data.setup()
    sample = next(iter(data.train_dataloader()))
    val = next(iter(data.val_dataloader()))
    torch.manual_seed(0)
    model = DynamicsEnsemble(store.observation_space, store.action_space, ensemble_size=2,
                             hidden_sizes=(64, 64))
    model.set_normalizer(sample["obs"], sample["action"], sample["reward"], sample["next_obs"])
    before = model.held_out_loss(val)
    trainer = L.Trainer(max_steps=150, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    assert model.held_out_loss(val) < 0.5 * before
    # and dreams closer to a real episode than "nothing moves", open loop (the error curves' benchmark)
    episode = max((store.episode(i) for i in range(len(store))), key=lambda e: len(e["action"]))
    scale = np.concatenate([store.episode(i)["obs"] for i in range(len(store))]).std(0) + 1e-6
    model_error, still_error = open_loop_error(model.eval(), [episode], scale, context=1, horizon=3, stride=1)
    assert model_error[0] < 0.5 * still_error[0], (model_error, still_error)


# ------------------------------------------------------------ advantages per imagined rollout


def gae_alone(rewards, values, last_value, terminated, gamma, lam):
    """GAE of one trajectory by the textbook recursion; it bootstraps from its own last value."""
    advantages, carry = [], 0.0
    for t in reversed(range(len(rewards))):
        next_value = 0.0 if terminated[t] else (values[t + 1] if t + 1 < len(rewards) else last_value)
        carry = rewards[t] + gamma * next_value - values[t] + gamma * lam * carry * (not terminated[t])
        advantages.append(carry)
    return advantages[::-1]


def test_gae_over_a_buffer_of_imagined_rollouts_equals_gae_on_each_alone():
    generator = torch.Generator().manual_seed(0)
    horizon, lengths, ends_terminated = 5, [5, 3, 1, 5, 2], [False, True, True, False, False]
    n = len(lengths)
    rewards, values = torch.randn(horizon, n, generator=generator), torch.randn(horizon, n, generator=generator)
    state_values = torch.randn(horizon + 1, n, generator=generator)  # V of s_0 .. s_H of each rollout
    values = state_values[:-1]
    valid, terminated = torch.zeros(horizon, n), torch.zeros(horizon, n)
    for i, (length, ended) in enumerate(zip(lengths, ends_terminated)):
        valid[:length, i] = 1
        terminated[length - 1, i] = float(ended)
    next_values = state_values[1:]  # rollout 4 was cut by its shorter horizon: its last valid step bootstraps
    gamma, lam = 0.9, 0.8
    together = per_trajectory_gae(rewards, values, next_values, terminated, valid, gamma, lam)

    for i, length in enumerate(lengths):
        alone = gae_alone(rewards[:length, i].tolist(), values[:length, i].tolist(), state_values[length, i].item(),
                          terminated[:length, i].tolist(), gamma, lam)
        torch.testing.assert_close(together[:length, i], torch.tensor(alone))
        assert torch.all(together[length:, i] == 0)

    # The seed's mixed buffer: the rollouts end to end, one bootstrap value at the very end, so a
    # rollout cut by the horizon bootstraps from the next rollout's first state. It differs.
    flat = [(rewards[t, i], values[t, i], terminated[t, i]) for i in range(n) for t in range(lengths[i])]
    seed_style, carry = [], 0.0
    for k in reversed(range(len(flat))):
        reward, value, ended = flat[k]
        next_value = state_values[lengths[-1], n - 1] if k == len(flat) - 1 else flat[k + 1][1]
        carry = reward + gamma * next_value * (1 - ended) - value + gamma * lam * (1 - ended) * carry
        seed_style.append(float(carry))
    ours = [float(together[t, i]) for i in range(n) for t in range(lengths[i])]
    assert not np.allclose(seed_style[::-1], ours)


# --------------------------------------------------------------------------- curiosity


def test_beta_falls_on_a_rising_return_and_rises_on_a_falling_one():
    rising, falling, flat = AdaptiveBeta(window=5), AdaptiveBeta(window=5), AdaptiveBeta(window=5)
    for update in range(40):
        rising.update(100.0 + 10 * update)
        falling.update(1000.0 - 10 * update)
        flat.update(500.0 + (update % 2) * 0.1)  # noise well inside the dead band
    assert rising.beta == pytest.approx(0.2 * 0.99 ** 36) and rising.trend > 0.01
    assert falling.beta == pytest.approx(0.2 * 1.01 ** 36) and falling.trend < -0.01
    assert flat.beta == 0.2
    capped = AdaptiveBeta(initial=0.99, high=1.0, window=2)
    for update in range(10):
        capped.update(-float(update))
    assert capped.beta == 1.0
    nan_first = AdaptiveBeta(window=2)
    assert nan_first.update(math.nan) == 0.2 and len(nan_first.returns) == 0  # no episode finished yet


def test_rnd_is_curious_about_unseen_states_only():
    torch.manual_seed(0)
    rnd = RND(obs_dim=6)
    seen = torch.randn(2048, 6) * 0.5
    unseen = torch.randn(256, 6) * 0.5 + 4.0
    for _ in range(10):
        rnd.update(seen, epochs=2)
    assert rnd.error(seen[:256]).mean() < 0.2 * rnd.error(unseen).mean()


# --------------------------------------------------------------- the hook inside the one PPO


def test_imagined_samples_join_ppos_update_with_their_weights():
    envs = make_vector_env("CartPole-v1", 1)
    config = ImaginationConfig(ensemble_size=2, model_hidden=(32,), model_train_steps=20, curiosity="model_error",
                               min_rollouts=4, max_rollouts=20, horizon=3)
    hook = AdaptiveImagination(config, envs.single_observation_space, envs.single_action_space)
    ppo = PPO(PPOConfig(total_steps=768, num_steps=256, num_minibatches=4, update_epochs=2), hook.record(envs), [hook])
    history = ppo.learn(progress=False)
    envs.close()
    for metrics in history:
        assert 4 <= metrics["mbppo/num_rollouts"] <= 20
        assert 0 < metrics["extra_samples"] == metrics["mbppo/imagined_steps"] <= 3 * metrics["mbppo/num_rollouts"]
        assert metrics["extra_weight_mean"] == pytest.approx(0.8 * metrics["mbppo/confidence"])
        for key in ("mbppo/model_loss", "mbppo/beta", "mbppo/real_reward", "mbppo/imagined_reward"):
            assert math.isfinite(metrics[key]), key
    assert "mbppo/imagined_intrinsic_reward" in history[-1] and "intrinsic_reward/mbppo" in history[-1]

    # every sample's loss terms are scaled by its weight
    batch = ppo.rollout.flatten()[:64]
    plain, _ = ppo._loss(batch)
    ones, _ = ppo._loss(batch, torch.ones(64), torch.ones(64, dtype=torch.bool))
    torch.testing.assert_close(plain, ones)
    _, logs = ppo._loss(batch, torch.full((64,), 0.5), torch.ones(64, dtype=torch.bool))
    _, plain_logs = ppo._loss(batch)
    torch.testing.assert_close(logs["policy_loss"], 0.5 * plain_logs["policy_loss"])
    torch.testing.assert_close(logs["value_loss"], 0.5 * plain_logs["value_loss"])


def test_a_hook_whose_env_was_not_recorded_says_so():
    envs = make_vector_env("CartPole-v1", 1)
    hook = AdaptiveImagination(ImaginationConfig(ensemble_size=2), envs.single_observation_space,
                               envs.single_action_space)
    ppo = PPO(PPOConfig(total_steps=256, num_steps=128, num_minibatches=4), envs, [hook])  # not hook.record(envs)
    with pytest.raises(RuntimeError, match=r"hook\.record\(envs\)"):
        ppo.learn(progress=False)
    envs.close()


# ----------------------------------------------------------------------------- the recipe


def run_recipe(run_dir: Path, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "recipes" / "mbppo_hopper.py"), f"--run_dir={run_dir}",
               "--wandb_mode=disabled", "--progress=False", "--ppo.num_steps=1024", "--eval_episodes=1",
               "--mbppo.model_train_steps=10", "--mbppo.model_hidden", "32", "32", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_recipe_runs_end_to_end_writes_every_artifact_and_resumes(tmp_path):
    first = run_recipe(tmp_path, "--total_steps=3072", "--eval_every=2048")
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "Hopper-v4-mbppo-seed1"
    for name in ["metrics.jsonl", "metrics.csv", "config.json", "evaluations.jsonl", "summary.json", "state.pt",
                 "learning_curve.png", "adaptive_quantities.png",
                 "checkpoints/policy/model.safetensors", "checkpoints/ensemble/model.safetensors"]:
        assert (run / name).exists(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*rows)
    assert {"mbppo/model_loss", "mbppo/held_out_loss", "mbppo/confidence", "mbppo/num_rollouts", "mbppo/beta",
            "mbppo/real_reward", "mbppo/imagined_reward", "eval/mean_return"} <= logged
    assert "mbppo/confidence" in (run / "metrics.csv").read_text().splitlines()[0]
    ensemble = DynamicsEnsemble.from_pretrained(run / "checkpoints" / "ensemble")
    assert ensemble.env_spec == "gym:Hopper-v4" and ensemble.ensemble_size == 5

    second = run_recipe(tmp_path, "--total_steps=4096", "--eval_every=2048")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "at step 3072" in second.stdout  # saved at the last evaluation
    steps = [json.loads(line)["step"] for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert steps == [2048, 3072, 4096]
    assert json.loads((run / "summary.json").read_text())["steps"] == 4096


def _recipe():
    """The recipe script as a module (registered, so that tyro can read its docstrings)."""
    spec = importlib.util.spec_from_file_location("mbppo_hopper", ROOT / "recipes" / "mbppo_hopper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_recipe_refuses_bad_input_before_any_work(tmp_path, capsys):
    recipe = _recipe()
    flags = [f"--run_dir={tmp_path}", "--wandb_mode=disabled"]
    for bad, message in [(["--mbppo.min_rollouts=50", "--mbppo.max_rollouts=10"], "min_rollouts <= max_rollouts"),
                         (["--mbppo.ensemble_size=1"], "confidence 'loss'"),  # the default confidence needs members
                         (["--mbppo.horizon=0"], "horizon must be at least 1"),
                         (["--mbppo.temperature=-1"], "temperature must be >= 0"),
                         (["--total_steps=1000"], "less than one PPO rollout")]:
        with pytest.raises(SystemExit):
            recipe.parse_config(recipe.Config, [*flags, *bad])
        assert message in " ".join(capsys.readouterr().err.replace("│", " ").split())  # tyro draws a box
    with pytest.raises(ValueError, match="Hopper-v4"):
        recipe.main(recipe.parse_config(recipe.Config, [*flags, "--env=Hopper-v9"]))
    assert not any(tmp_path.iterdir())
