"""worldkit.checkpoints: exact round trips, named checkpoints, Lightning .ckpt files, and refusals."""

import json
import os
import re
import shlex
import sys
from pathlib import Path

import gymnasium as gym
import lightning as L
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import worldkit
from worldkit import checkpoints
from worldkit.checkpoints import (
    CheckpointError,
    CheckpointNotFoundError,
    ClassMismatchError,
    CorruptCheckpointError,
    ForeignCheckpointError,
    SpaceMismatchError,
    UnknownClassError,
    UnsafeCheckpointError,
    checkpointable,
    from_pretrained,
    save_pretrained,
)
from worldkit.spaces import spaces_match


@checkpointable
class TinyWorldModel(L.LightningModule):
    """Next-observation MLP with a normalisation buffer, shaped like the real world models."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 64):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(obs_dim + action_dim, hidden), nn.Tanh(), nn.Linear(hidden, obs_dim))
        self.register_buffer("obs_scale", torch.ones(obs_dim))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs / self.obs_scale, action], dim=-1))

    def training_step(self, batch, batch_idx):
        obs, action, next_obs = batch
        return F.mse_loss(self(obs, action), next_obs)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


@checkpointable
class TinyController(nn.Module):
    """A plain nn.Module, which sets its hparams itself."""

    def __init__(self, obs_dim: int, action_dim: int):
        super().__init__()
        self.hparams = {"obs_dim": obs_dim, "action_dim": action_dim}
        self.policy = nn.Linear(obs_dim, action_dim)


class PlantsADirectory:
    """Unpickling this calls os.mkdir: what a malicious checkpoint does, made harmless and visible."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def pendulum():
    env = gym.make("Pendulum-v1")
    yield env
    env.close()


@pytest.fixture
def model(pendulum):
    torch.manual_seed(0)
    model = TinyWorldModel(obs_dim=3, action_dim=1)
    model.obs_scale.copy_(torch.tensor([1.0, 1.0, 8.0]))  # a buffer the constructor would not recreate
    model.env_spec = "gym:Pendulum-v1"
    model.observation_space, model.action_space = pendulum.observation_space, pendulum.action_space
    return model


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(16, 3, generator=generator), torch.randn(16, 1, generator=generator)


@pytest.fixture
def saved(model, tmp_path):
    return save_pretrained(
        model, tmp_path / "tiny", metrics={"val_loss": torch.tensor(0.25)}, command="python train.py --steps 3"
    )


def outputs(module, batch):
    with torch.no_grad():
        return module(*batch)


def test_float32_round_trip_is_bit_exact_and_records_what_made_it(model, saved, batch, pendulum):
    loaded = TinyWorldModel.from_pretrained(
        saved, observation_space=pendulum.observation_space, action_space=pendulum.action_space
    )
    assert type(loaded) is TinyWorldModel and not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in model.state_dict().items())
    assert torch.equal(outputs(loaded, batch), outputs(model, batch))
    assert loaded.env_spec == "gym:Pendulum-v1"
    assert spaces_match(loaded.observation_space, pendulum.observation_space)
    assert spaces_match(loaded.action_space, pendulum.action_space)

    config = json.loads((saved / "config.json").read_text())
    assert (config["format"], config["class"]) == ("worldkit-checkpoint", f"{__name__}.TinyWorldModel")
    assert config["hparams"] == {"obs_dim": 3, "action_dim": 1, "hidden": 64}
    assert config["metrics"] == {"val_loss": 0.25}
    assert config["command"] == "python train.py --steps 3"
    assert config["versions"]["worldkit"] == worldkit.__version__
    assert config["versions"]["torch"] == torch.__version__
    assert sorted(path.name for path in saved.iterdir()) == ["config.json", "model.safetensors"]
    assert type(from_pretrained(saved)) is TinyWorldModel  # the config names the class


def test_the_card_becomes_the_readme_and_the_command_defaults_to_this_process(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "carded", card="# Tiny\n\nTrained on Pendulum.\n")
    assert (folder / "README.md").read_text() == "# Tiny\n\nTrained on Pendulum.\n"
    assert json.loads((folder / "config.json").read_text())["command"] == shlex.join(sys.argv)


def test_float16_checkpoints_are_smaller_and_load_close_in_the_models_dtype(model, saved, batch, tmp_path):
    half = save_pretrained(model, tmp_path / "half", dtype="float16")
    assert (half / "model.safetensors").stat().st_size < 0.7 * (saved / "model.safetensors").stat().st_size
    loaded = TinyWorldModel.from_pretrained(half)
    assert {value.dtype for value in loaded.state_dict().values()} == {torch.float32}
    torch.testing.assert_close(outputs(loaded, batch), outputs(model, batch), atol=1e-2, rtol=1e-2)
    assert not torch.equal(outputs(loaded, batch), outputs(model, batch))  # it really was rounded


def test_a_bare_name_resolves_under_WORLDKIT_CHECKPOINTS(model, batch, tmp_path, monkeypatch):
    save_pretrained(model, tmp_path / "zoo" / "pendulum-tiny")
    monkeypatch.setenv("WORLDKIT_CHECKPOINTS", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    assert torch.equal(outputs(from_pretrained("pendulum-tiny"), batch), outputs(model, batch))

    with pytest.raises(CheckpointNotFoundError, match="pendulum-huge") as error:
        from_pretrained("pendulum-huge")
    assert "names there: pendulum-tiny" in str(error.value)
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint file or folder"):
        from_pretrained("zoo/pendulum-huge")  # a path, so never looked up as a name


def test_names_default_to_the_repositorys_checkpoints_folder(monkeypatch):
    monkeypatch.delenv("WORLDKIT_CHECKPOINTS", raising=False)
    repo_checkpoints = Path(worldkit.__file__).resolve().parents[1] / "checkpoints"
    with pytest.raises(CheckpointNotFoundError, match=re.escape(str(repo_checkpoints))):
        from_pretrained("no-such-model")


def test_a_lightning_trainer_ckpt_loads_with_identical_outputs(model, batch, tmp_path):
    generator = torch.Generator().manual_seed(2)
    obs, action = torch.randn(64, 3, generator=generator), torch.randn(64, 1, generator=generator)
    data = DataLoader(TensorDataset(obs, action, obs + 0.1 * action), batch_size=16)
    untrained = outputs(model, batch)
    trainer = L.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "tiny.ckpt")
    assert not torch.equal(outputs(model, batch), untrained)  # training moved the weights

    with pytest.raises(CheckpointError, match="expected_class"):
        from_pretrained(tmp_path / "tiny.ckpt")
    loaded = from_pretrained(tmp_path / "tiny.ckpt", expected_class=TinyWorldModel)
    assert not loaded.training
    assert torch.equal(outputs(loaded, batch), outputs(model, batch))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(model, tmp_path):
    marker, file = tmp_path / "pwned", tmp_path / "model.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {}, "callbacks": PlantsADirectory(marker)}, file)

    with pytest.raises(UnsafeCheckpointError, match="never unpickles code") as error:
        TinyWorldModel.from_pretrained(file)
    assert str(file) in str(error.value)
    assert not marker.exists()
    torch.load(file, weights_only=False)  # the payload is live: an unsafe load does run it
    assert marker.is_dir()


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_damaged_files_are_reported_as_corrupt_naming_the_file(model, saved, tmp_path):
    truncate(saved / "model.safetensors")
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(saved / "model.safetensors"))):
        from_pretrained(saved)
    (saved / "model.safetensors").unlink()
    with pytest.raises(CorruptCheckpointError, match="missing"):
        from_pretrained(saved)
    truncate(saved / "config.json")
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(saved / "config.json"))):
        from_pretrained(saved)

    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    truncate(ckpt)
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        TinyWorldModel.from_pretrained(ckpt)


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}, "another tool"),
        ({"format": "worldkit-checkpoint", "format_version": 99}, "format version 99"),
    ],
)
def test_a_config_worldkit_did_not_write_is_refused(saved, config, problem):
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ForeignCheckpointError, match=problem):
        from_pretrained(saved)


def test_a_torch_file_that_is_not_a_lightning_checkpoint_is_refused(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ForeignCheckpointError, match="state_dict"):
        TinyWorldModel.from_pretrained(tmp_path / "weights.pt")


def test_a_checkpoint_of_another_class_is_refused(tmp_path):
    folder = TinyController(obs_dim=3, action_dim=1).save_pretrained(tmp_path / "controller")
    assert type(from_pretrained(folder)) is TinyController
    with pytest.raises(ClassMismatchError, match="TinyController.*not a .*TinyWorldModel"):
        TinyWorldModel.from_pretrained(folder)


def test_an_unregistered_class_is_refused_without_importing_its_module(saved, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "planted.py").write_text(f"import os\nos.mkdir({str(marker)!r})\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config_file = saved / "config.json"
    for name in ["planted.Model", "worldkit.spaces.Box"]:
        config = json.loads(config_file.read_text())
        config_file.write_text(json.dumps({**config, "class": name}))
        with pytest.raises(UnknownClassError, match=re.escape(name)):
            from_pretrained(saved)
    assert not marker.exists() and "planted" not in sys.modules


@pytest.mark.parametrize(
    "key, other_env", [("observation_space", "CartPole-v1"), ("action_space", "MountainCarContinuous-v0")]
)
def test_mismatched_spaces_are_refused_before_any_weights_are_read(saved, pendulum, key, other_env):
    other = gym.make(other_env)
    (saved / "model.safetensors").unlink()  # the check must come first, so this is never noticed
    with pytest.raises(SpaceMismatchError) as error:
        from_pretrained(saved, **{key: getattr(other, key)})
    other.close()
    message = str(error.value)
    assert str(getattr(pendulum, key)) in message and str(getattr(other, key)) in message
    assert "gym:Pendulum-v1" in message


def test_an_interrupted_save_leaves_the_previous_checkpoint_whole(model, saved, batch, tmp_path, monkeypatch):
    def crash_while_writing_weights(tensors, filename, metadata=None):
        save_file(tensors, filename, metadata)
        truncate(Path(filename))
        raise KeyboardInterrupt

    before = outputs(model, batch)
    with torch.no_grad():
        model.net[0].bias.add_(1.0)
    monkeypatch.setattr(checkpoints, "save_file", crash_while_writing_weights)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(model, saved)
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]  # no staging folder left behind
    assert torch.equal(outputs(from_pretrained(saved), batch), before)

    monkeypatch.undo()
    save_pretrained(model, saved)
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]
    assert torch.equal(outputs(from_pretrained(saved), batch), outputs(model, batch))


def test_save_refuses_what_it_could_not_load_or_should_not_replace(model, pendulum, tmp_path):
    with pytest.raises(CheckpointError, match="@worldkit.checkpoints.checkpointable"):
        save_pretrained(nn.Linear(2, 2), tmp_path / "linear")
    controller = TinyController(obs_dim=3, action_dim=1)
    controller.hparams["space"] = pendulum.observation_space
    with pytest.raises(CheckpointError, match=r"hparams\['space'\] is not JSON"):
        save_pretrained(controller, tmp_path / "controller")
    assert not any(tmp_path.iterdir())

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a worldkit checkpoint"):
        save_pretrained(model, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
