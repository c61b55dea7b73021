"""Shipped checkpoints load by name and still reach their model card's metric on fresh data."""

import json
from pathlib import Path

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
