"""Recipe configs take a W&B agent's command line; runs log locally and to W&B offline."""

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from worldkit.config import parse_config
from worldkit.runs import check_same_settings
from worldkit.tracking import RunLogger, check_wandb_mode
from worldkit.training import TrainerConfig


@dataclass
class Inner:
    lr: float = 3e-4


@dataclass
class RecipeConfig:
    env: str = "Walker2d-v4"
    total_steps: int = 1_000_000
    method: Literal["ppo", "wm_ppo"] = "wm_ppo"
    track: bool = False
    seeds: tuple[int, ...] = (0,)
    inner: Inner = field(default_factory=Inner)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def test_a_sweep_agents_command_line_parses():
    args = ["--env=Hopper-v4", "--total_steps=2048", "--method=ppo", "--track=True", "--inner.lr=0.01",
            "--trainer.devices=2", "--trainer.strategy=ddp", "--seeds", "1", "2"]
    config = parse_config(RecipeConfig, args)
    assert (config.env, config.total_steps, config.method, config.track) == ("Hopper-v4", 2048, "ppo", True)
    assert config.inner.lr == 0.01 and config.seeds == (1, 2)
    assert (config.trainer.devices, config.trainer.strategy) == ("2", "ddp")
    assert parse_config(RecipeConfig, []) == RecipeConfig()


def test_bad_flags_fail_before_any_work(capsys):
    with pytest.raises(SystemExit):
        parse_config(RecipeConfig, ["--method=sac"])
    with pytest.raises(SystemExit):
        parse_config(RecipeConfig, ["--total_steps=many"])
    capsys.readouterr()
    with pytest.raises(SystemExit):  # a config's own validation reaches the user as a CLI error
        parse_config(RecipeConfig, ["--trainer.max_steps=0"])
    assert "max_steps must be at least 1" in capsys.readouterr().err


def test_wandb_modes_are_checked_and_online_never_prompts(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="must be one of"):
        check_wandb_mode("cloud")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with pytest.raises(ValueError, match="wandb login"):
        check_wandb_mode("online")
    assert check_wandb_mode("offline") == "offline"


def test_run_logger_writes_local_files_without_wandb(tmp_path):
    with RunLogger(tmp_path, RecipeConfig(), mode="disabled") as run:
        for step in range(3):
            run.log({"return": step * 10.0, "loss": 1.0 / (step + 1)}, step=step * 100)
    assert json.loads((tmp_path / "config.json").read_text())["inner"] == {"lr": 3e-4}
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,loss,return" and lines[-1] == "200,0.3333333333333333,20.0"
    assert not (tmp_path / "wandb").exists()


def test_wandb_offline_run_records_config_and_metrics(tmp_path):
    with RunLogger(tmp_path, {"latent_dim": 32}, mode="offline", project="worldkit-tests") as run:
        run.log({"episode_return_unusual_key": 1.5}, step=1)
    [run_file] = list(Path(tmp_path, "wandb").glob("offline-run-*/run-*.wandb"))
    deadline = time.monotonic() + 30  # W&B's service process may still be writing the file out
    while b"episode_return_unusual_key" not in (content := run_file.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"episode_return_unusual_key" in content and b"latent_dim" in content


def test_lightning_logs_offline_after_another_offline_run_without_a_login(run_python, tmp_path):
    """A recipe logs one stage with RunLogger and trains the next with Lightning, in one process."""
    result = run_python(f"""
        import os
        for name in ("WANDB_MODE", "WANDB_API_KEY"):  # the tests' WANDB_MODE=disabled, and any key
            os.environ.pop(name, None)
        from worldkit.tracking import RunLogger, lightning_loggers
        with RunLogger({str(tmp_path / "first")!r}, {{"a": 1}}, mode="offline") as run:
            run.log({{"m": 1.0}}, step=0)
        csv, wandb_logger = lightning_loggers({str(tmp_path / "second")!r}, {{"a": 1}}, mode="offline")
        print("mode", wandb_logger.experiment.settings.mode)
        wandb_logger.experiment.finish()
    """, env={"HOME": str(tmp_path), "NETRC": str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mode offline" in result.stdout


@dataclass
class _Inner:
    a: int = 1
    b: str = "added later"


@dataclass
class _Outer:
    x: int = 0
    inner: _Inner = field(default_factory=_Inner)
    added: bool = False


def test_a_run_saved_before_a_setting_existed_resumes_only_at_its_default(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"x": 0, "inner": {"a": 1}}))  # no b, no added
    check_same_settings(tmp_path, _Outer(), resumable=[])
    with pytest.raises(ValueError, match=r"\(inner\.b: saved 'added later', now 'other'\)"):  # the flag's name
        check_same_settings(tmp_path, _Outer(inner=_Inner(b="other")), resumable=[])
    with pytest.raises(ValueError, match="added: saved False, now True"):
        check_same_settings(tmp_path, _Outer(added=True), resumable=[])
    check_same_settings(tmp_path, _Outer(x=5), resumable=["x"])


def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    """The W&B run id is kept in the run folder, so a run resumed after a kill logs to the same run."""
    with RunLogger(tmp_path, {"latent_dim": 32}, mode="offline", project="worldkit-tests") as first:
        first.log({"x": 1.0}, step=1)
        first_id = first.wandb_run.id
    assert (tmp_path / "wandb_run_id").read_text().strip() == first_id
    with RunLogger(tmp_path, {"latent_dim": 32}, mode="offline", project="worldkit-tests") as second:
        second.log({"x": 2.0}, step=2)
        assert second.wandb_run.id == first_id
    with RunLogger(tmp_path / "other", {"latent_dim": 32}, mode="offline", project="worldkit-tests") as other:
        assert other.wandb_run.id != first_id


def test_tensorboard_logs_scalars_and_pictures_where_chosen(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from worldkit.plots import learning_curves

    picture = learning_curves({"run": [([0, 1], [0.0, 1.0])]}, tmp_path / "curve.png")
    with RunLogger(tmp_path / "run", {"logger": "tensorboard"}, backend="tensorboard") as run:
        run.log({"eval/mean_return": 3.5}, step=7)
        run.log_image("learning_curve", picture)
        assert run.wandb_run is None
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    [scalar] = events.Scalars("eval/mean_return")
    assert (scalar.step, scalar.value) == (7, 3.5)
    assert events.Tags()["images"] == ["learning_curve"]
    with pytest.raises(ValueError, match="logger must be one of"):
        RunLogger(tmp_path / "other", backend="tensorbored")


def test_the_console_is_quiet_unless_verbose(tmp_path):
    """Lightning's device banner and model summary appear with --verbose only."""
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent("""
        import sys, types, torch, lightning as L
        from worldkit.tracking import quiet_console
        from worldkit.training import TrainerConfig, make_trainer

        class Tiny(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(2, 1)
            def training_step(self, batch, batch_idx):
                return self.layer(batch).square().mean()
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        verbose = sys.argv[1] == "True"
        quiet_console(verbose)
        hparams = types.SimpleNamespace(verbose=verbose, logger="wandb")
        trainer = make_trainer(TrainerConfig(max_steps=2, progress=False), sys.argv[2], wandb_mode="disabled",
                               hparams=hparams)
        trainer.fit(Tiny(), torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4))
    """))
    outputs = {}
    for verbose in (False, True):
        result = subprocess.run([sys.executable, str(script), str(verbose), str(tmp_path / f"run{verbose}")],
                                check=False, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[verbose] = result.stdout + result.stderr
    assert "GPU available" in outputs[True] and "GPU available" not in outputs[False]


def test_curve_bands_are_bootstrap_intervals_of_the_mean_over_seeds():
    from worldkit.plots import bootstrap_band

    seeds = np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [14.0, 10.0]])
    low, high = bootstrap_band(seeds)
    assert low[0] < seeds[:, 0].mean() < high[0]
    assert high[0] - low[0] > 3.0  # one outlying seed widens the band, as it should with five seeds
    assert low[1] == high[1] == 10.0  # seeds that agree leave no band
    assert np.array_equal(bootstrap_band(seeds)[0], low)  # a figure redraws the same
