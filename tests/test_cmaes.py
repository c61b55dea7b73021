"""C: the linear controller, CMA-ES with the population as one batch, real-env evaluation in workers."""

import dataclasses
import multiprocessing
import os
import signal
import threading
import time

import pytest
import torch

from worldkit.checkpoints import from_pretrained, save_pretrained
from worldkit.controllers.cmaes import (
    _WORKER,
    CMAESConfig,
    LinearController,
    WorkerDiedError,
    _run_episode,
    _start_worker,
    choose_actions,
    dream_population,
    evaluate_in_env,
    train_in_dream,
)
from worldkit.dream.imagine import imagine
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import repeat_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def dream_model() -> VAEMDNWorldModel:
    """An untrained but real V + M whose episodes rarely end, and start states from random latents."""
    torch.manual_seed(0)
    model = VAEMDNWorldModel.compose(ConvVAE(channels=(8, 16), latent_dim=8), MDNRNN(latent_dim=8, hidden_dim=16))
    with torch.no_grad():  # outcome: a fixed linear reward of h for ongoing steps, P(continue) ~ 0.98
        first, second, last = model.mdnrnn.outcome_head[::2]
        first.weight.zero_()[:, :16] = torch.eye(16)  # relu(h + 1) = h + 1: h from the LSTM is in (-1, 1)
        first.bias.fill_(1.0)
        second.weight.copy_(torch.eye(16)), second.bias.zero_()
        last.weight[0] = torch.randn(16, generator=torch.Generator().manual_seed(3))
        last.bias[-1] = -4.0
    return model


def start_states(model: VAEMDNWorldModel, n: int):
    return model.initial_state(n)._replace(z=torch.randn(n, 8, generator=torch.Generator().manual_seed(1)))


def test_batched_population_gives_each_candidates_own_returns(dream_model):
    config = CMAESConfig(population=5, rollouts=3, horizon=25, temperature=0.0, deterministic=True)
    starts = start_states(dream_model, 3)
    vectors = torch.randn(5, dream_model.feature_dim * 3 + 3, generator=torch.Generator().manual_seed(2))
    batched = dream_population(dream_model, starts, vectors, config).returns().reshape(5, 3)
    with torch.no_grad():
        for p in range(5):
            controller = LinearController(dream_model.feature_dim, 3).load_vector(vectors[p])
            alone = imagine(dream_model, starts, controller.act, 25, temperature=0.0).returns()
            torch.testing.assert_close(batched[p], alone)
    assert batched.std(0).max() > 0, "candidates should differ, or the comparison shows nothing"


@pytest.mark.parametrize("deterministic", [True, False], ids=["argmax", "sampled"])
def test_cmaes_improves_the_controller_in_a_dream(dream_model, deterministic):
    starts = start_states(dream_model, 8)
    generations = 6 if deterministic else 12  # a sampled controller must also learn to be sure of itself
    config = CMAESConfig(population=8, generations=generations, rollouts=8, horizon=30, temperature=0.0, sigma0=0.5,
                         deterministic=deterministic)
    result = train_in_dream(dream_model, starts, config, progress=False)

    def dreamed_return(controller: LinearController) -> float:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            return imagine(dream_model, repeat_state(starts, 8), lambda f: controller.act(f, generator), 30,
                                   temperature=0.0).returns().mean().item()

    initial = dreamed_return(LinearController(dream_model.feature_dim, 3, deterministic))  # W = 0, b = 0
    assert dreamed_return(result.controller) > initial + (1.0 if deterministic else 0.5)
    assert result.history[-1]["mean"] > result.history[0]["mean"]
    assert [row["generation"] for row in result.history] == list(range(generations))
    assert result.history[-1]["sigma"] != config.sigma0


def test_a_warm_start_begins_the_search_at_the_given_controller(dream_model):
    starts = start_states(dream_model, 8)
    config = CMAESConfig(population=8, generations=6, rollouts=8, horizon=30, temperature=0.0, sigma0=0.5,
                         deterministic=True)
    trained = train_in_dream(dream_model, starts, config, progress=False)
    once = dataclasses.replace(config, generations=1, seed=1)
    cold = train_in_dream(dream_model, starts, once, progress=False).history[0]["mean_candidate"]
    warm = train_in_dream(dream_model, starts, once, initial=trained.controller, progress=False)
    assert warm.history[0]["mean_candidate"] > cold + 1.0  # generation 0's mean is the trained controller
    torch.testing.assert_close(LinearController(dream_model.feature_dim, 3).load_vector(
        trained.controller.vector()).weight, trained.controller.weight)
    with pytest.raises(ValueError, match="initial controller has 4 parameters"):
        train_in_dream(dream_model, starts, once, initial=LinearController(1, 2), progress=False)


def test_controller_checkpoint_round_trip_and_sampling(tmp_path):
    controller = LinearController(4, 3, deterministic=False).load_vector(torch.arange(15.0) / 10)
    loaded = from_pretrained(save_pretrained(controller, tmp_path / "c"))
    assert isinstance(loaded, LinearController) and not loaded.hparams["deterministic"]
    torch.testing.assert_close(loaded.weight, torch.arange(12.0).reshape(4, 3) / 10)
    logits = torch.tensor([[0.0, 1.0, 2.0]]).repeat(20_000, 1)
    counts = torch.bincount(choose_actions(logits, False, torch.Generator().manual_seed(0)), minlength=3)
    torch.testing.assert_close(counts / 20_000, torch.softmax(logits[0], 0), atol=0.015, rtol=0)
    assert (choose_actions(logits, True) == 2).all()


def test_an_exploration_floor_is_part_of_the_controller_in_the_dream_and_on_disk(dream_model, tmp_path):
    # A sure controller (always action 0) with a 30% floor drawn from (0.2, 0.2, 0.6).
    controller = LinearController(4, 3, deterministic=True, explore=0.3, explore_actions=[0.2, 0.2, 0.6])
    controller.bias.data = torch.tensor([100.0, 0.0, 0.0])
    loaded = from_pretrained(save_pretrained(controller, tmp_path / "c"))
    actions = loaded.act(torch.zeros(20_000, 4), torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.bincount(actions, minlength=3) / 20_000, torch.tensor([0.76, 0.06, 0.18]),
                               atol=0.015, rtol=0)
    # The population explores in the dream as the saved controller will act.
    config = CMAESConfig(population=2, rollouts=500, horizon=4, temperature=0.0, explore=0.3,
                         explore_actions=(0.2, 0.2, 0.6))
    vector = torch.cat([torch.zeros(dream_model.feature_dim * 3), torch.tensor([100.0, 0.0, 0.0])])
    dream = dream_population(dream_model, start_states(dream_model, 500), vector.repeat(2, 1), config,
                             torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.bincount(dream.actions.reshape(-1), minlength=3) / dream.actions.numel(),
                               torch.tensor([0.76, 0.06, 0.18]), atol=0.015, rtol=0)
    assert train_in_dream(dream_model, start_states(dream_model, 4),
                          dataclasses.replace(config, generations=1, rollouts=2), progress=False
                          ).controller.hparams["explore"] == 0.3
    with pytest.raises(ValueError, match="explore must be a probability"):
        CMAESConfig(explore=1.5)
    with pytest.raises(ValueError, match="summing to 1"):
        LinearController(4, 3, explore=0.1, explore_actions=[0.5, 0.6, 0.0])
    with pytest.raises(ValueError, match="all 3 actions"):  # before the search starts
        train_in_dream(dream_model, start_states(dream_model, 4),
                       dataclasses.replace(config, explore_actions=(0.5, 0.5)), progress=False)


def test_real_env_evaluation_in_workers_matches_one_process(dream_model, tmp_path):
    controller = LinearController(dream_model.feature_dim, 3).load_vector(
        torch.randn(dream_model.feature_dim * 3 + 3, generator=torch.Generator().manual_seed(3)))
    escape = {"escape": 4, "escape_actions": [0.2, 0.2, 0.6]}
    result = evaluate_in_env(dream_model, controller, "miniworld:Sidewalk", 2, seed=5, workers=2, progress=False,
                             **escape)
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    threads = torch.get_num_threads()
    try:  # what a worker does, in this process
        _start_worker("miniworld:Sidewalk", None, str(save_pretrained(dream_model, tmp_path / "wm")),
                      str(save_pretrained(controller, tmp_path / "controller")), *escape.values())
        here = [_run_episode(5 + i) for i in range(2)]
    finally:
        torch.set_num_threads(threads)
        _WORKER.pop("env").close()
    assert result["lengths"] == [episode["length"] for episode in here]
    assert result["returns"] == [episode["return"] for episode in here]
    assert result["escapes"] == [episode["escapes"] for episode in here]
    assert result["mean_length"] == sum(result["lengths"]) / 2
    in_process = evaluate_in_env(dream_model, controller, "miniworld:Sidewalk", 2, seed=5, workers=1, progress=False,
                                 **escape)
    assert in_process == result and torch.get_num_threads() == threads  # the same episodes, and no thread change


def test_a_killed_worker_fails_the_evaluation_instead_of_hanging(dream_model):
    controller = LinearController(dream_model.feature_dim, 3)
    outcome = {}

    def evaluate() -> None:
        try:
            evaluate_in_env(dream_model, controller, "miniworld:Sidewalk", 50, workers=2, progress=False)
        except BaseException as error:  # noqa: BLE001 - the test inspects whatever ended it
            outcome["error"] = error

    thread = threading.Thread(target=evaluate, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = multiprocessing.active_children()
    assert workers, "no worker process started"
    os.kill(workers[0].pid, signal.SIGKILL)
    thread.join(timeout=90)
    assert not thread.is_alive(), "the evaluation hung after a worker died"
    assert isinstance(outcome.get("error"), WorkerDiedError)
    assert "died" in str(outcome["error"])
