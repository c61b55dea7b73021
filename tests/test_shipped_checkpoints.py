"""Shipped checkpoints load by name and still reach their model card's metric on fresh data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from worldkit.data import TransitionDataset, collect
from worldkit.models import LatentMLPWorldModel

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.parametrize("name, env", [("walker2d-wm", "Walker2d-v4"), ("halfcheetah-wm", "HalfCheetah-v4")])
def test_world_model_checkpoint_meets_its_card(name, env, tmp_path):
    card = json.loads((CHECKPOINTS / name / "config.json").read_text())["metrics"]
    model = LatentMLPWorldModel.from_pretrained(name)
    collect(tmp_path, env, steps=2_000, seed=12345, progress=False)  # not the card's seed
    dataset = TransitionDataset(tmp_path)
    batch = {key: torch.stack([dataset[i][key] for i in range(len(dataset))]) for key in ("obs", "action", "next_obs")}
    error = model.one_step_error(batch["obs"], batch["action"], batch["next_obs"])
    assert error < 1.0, "the dynamics should beat predicting no change"
    assert error == pytest.approx(card["one_step_relative_latent_error"], rel=0.3)
    assert (CHECKPOINTS / name / "model.safetensors").stat().st_size < 20 * 2**20


def test_sidewalk_vae_and_mdnrnn_meet_their_cards(tmp_path):
    from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
    from worldkit.models.mdnrnn import MDNRNN
    from worldkit.models.vae import ConvVAE

    vae, mdnrnn = ConvVAE.from_pretrained("sidewalk-vae"), MDNRNN.from_pretrained("sidewalk-mdnrnn")
    card = json.loads((CHECKPOINTS / "sidewalk-vae" / "config.json").read_text())["metrics"]
    store = collect(tmp_path, "miniworld:Sidewalk", episodes=20, seed=12345, progress=False)  # not the card's seed
    frames = torch.cat([torch.from_numpy(episode["obs"]) for episode in store]).float() / 255
    with torch.no_grad():
        recon = torch.cat([vae.reconstruct(chunk) for chunk in (frames * 255).to(torch.uint8).split(256)])
        latents = LatentEpisodes.encode(vae, store, progress=False)
        [batch] = LatentSequenceDataModule(latents, 200, batch_size=len(latents), val_fraction=0).train_dataloader()
        nll = mdnrnn.losses(batch)["nll"].item()
        _, h, _ = mdnrnn(batch["mu"][:, :-1], batch["action"])
        done = torch.sigmoid(mdnrnn.outcome(h, batch["mu"][:, 1:]).done_logit)
    error = (recon - frames).pow(2).flatten(1).sum(-1).mean().item()
    mean_frame = (frames - frames.mean(0)).pow(2).flatten(1).sum(-1).mean().item()
    assert error < mean_frame / 4, "V should reconstruct far better than the mean frame"
    assert error == pytest.approx(card["recon_error_per_frame"], rel=0.3)
    assert nll == pytest.approx(card["next_latent_nll_per_step"], abs=8.0)  # nats per step
    ends, others = batch["terminated"], batch["mask"] & ~batch["terminated"]
    assert done[ends].mean() > 10 * done[others].mean(), "M should tell the steps that end an episode"


def test_dmc_walker_rssm_meets_its_card(tmp_path):
    from worldkit.dream.open_loop import open_loop_error
    from worldkit.models import RSSM

    config = json.loads((CHECKPOINTS / "dmc-walker-rssm" / "config.json").read_text())
    card = config["metrics"]
    model = RSSM.from_pretrained("dmc-walker-rssm")
    assert config["env_spec"] == "dmc:walker-walk"
    store = collect(tmp_path, "dmc:walker-walk", episodes=2, seed=4242, progress=False)  # not the card's seed
    episodes = [store.episode(i) for i in range(len(store))]
    scale = np.concatenate([episode["obs"] for episode in episodes]).std(0) + 1e-6
    errors, still = open_loop_error(model, episodes, scale, context=card["context"], horizon=card["horizon"],
                                    stride=card["stride"])
    # 10 steps ahead, relative to "nothing moves": the card's 0.57; an untrained RSSM's is ~1.5
    ratio = errors[9] / still[9]
    assert ratio < 0.85, "imagination should beat 'nothing moves' 10 steps ahead"
    assert ratio == pytest.approx(card["open_loop_error_10"] / card["nothing_moves_error_10"], abs=0.25)
    assert (CHECKPOINTS / "dmc-walker-rssm" / "model.safetensors").stat().st_size < 20 * 2**20


def test_dmc_walker_dreamer_walks_as_its_card_says():
    """The shipped Dreamer agent, loaded by name, holds each action for 2 steps as in training and
    walks on episodes its card never saw."""
    from worldkit.checkpoints import from_pretrained

    card = json.loads((CHECKPOINTS / "dmc-walker-dreamer" / "config.json").read_text())["metrics"]
    agent = from_pretrained("dmc-walker-dreamer")
    result = agent.evaluate(episodes=2, seed=40_000)  # not the card's seeds
    assert agent.action_repeat == 2 and result["mean_length"] == 500
    assert result["mean_return"] > 0.6 * card["mean_return"]
    assert (CHECKPOINTS / "dmc-walker-dreamer" / "model.safetensors").stat().st_size < 5 * 2**20
