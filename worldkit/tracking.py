"""Experiment tracking: local files always, W&B offline by default, never a login prompt.

Lightning training logs through :func:`lightning_loggers`; loops that are not Lightning (PPO,
CMA-ES, collection) log through :class:`RunLogger`. Both write the same local files, so a run
can be read without W&B, and ``wandb sync`` uploads an offline run later.
"""

import csv
import json
import netrc
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from worldkit.files import read_jsonl

WANDB_MODES = ("online", "offline", "disabled")


def check_wandb_mode(mode: str) -> str:
    """Refuse unknown modes, and online mode without credentials, before any work starts."""
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {mode!r}")
    if mode == "online" and not _has_wandb_credentials():
        raise ValueError(
            "wandb mode 'online' needs credentials: run `wandb login` or set WANDB_API_KEY "
            "(and WANDB_BASE_URL for your own server); or use mode 'offline' and `wandb sync` later"
        )
    return mode


LOGGERS = ("wandb", "tensorboard")


def check_logger(logger: str) -> str:
    """Refuse an unknown logger, and TensorBoard where it is not installed, before any work starts."""
    if logger not in LOGGERS:
        raise ValueError(f"logger must be one of {LOGGERS}, got {logger!r}")
    if logger == "tensorboard":
        try:
            import tensorboard  # noqa: F401 - torch's SummaryWriter needs it
        except ImportError as error:
            raise ValueError("--logger=tensorboard needs the tensorboard package: pip install tensorboard") from error
    return logger


@dataclass
class TrackingOptions:
    """How a run reports, the same flags in every recipe (a recipe's config inherits them)."""

    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    logger: Literal["wandb", "tensorboard"] = "wandb"
    """where metrics go besides the run folder's files: W&B (in wandb_mode), or TensorBoard event
    files in <run_dir>/tensorboard"""
    verbose: bool = False
    """Lightning's and W&B's own messages too (a quiet console otherwise: progress bars and results)"""
    progress: bool = True
    """progress bars"""

    def start_reporting(self) -> None:
        """Refuse an unusable W&B mode or logger before any work, and quiet the console."""
        check_wandb_mode(self.wandb_mode)
        check_logger(self.logger)
        quiet_console(self.verbose)


def quiet_console(verbose: bool = False) -> None:
    """A console that shows progress bars and results: Lightning's device banners, model summaries
    and tips, and W&B's banners, only when ``verbose``."""
    import logging

    if verbose:
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _summary_writer(folder: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder))


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def config_dict(config: Any) -> dict[str, Any]:
    """A dataclass (possibly nested) or mapping as plain JSON-ready values."""
    data = asdict(config) if is_dataclass(config) else dict(config)
    return json.loads(json.dumps(data, default=str))


class RunLogger:
    """Metrics, pictures and checkpoints of one run: to ``run_dir`` always, to W&B unless disabled.

    Local files: ``config.json``, ``metrics.jsonl`` (one JSON object per log call) and
    ``metrics.csv`` (written on :meth:`finish`, one column per metric key).
    """

    def __init__(self, run_dir: str | Path, config: Any = None, *, mode: str = "offline",
                 project: str = "worldkit", name: str | None = None, group: str | None = None,
                 backend: str | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config = config_dict(config) if config is not None else {}
        (self.run_dir / "config.json").write_text(json.dumps(self.config, indent=2))
        self._metrics_file = open(self.run_dir / "metrics.jsonl", "a")
        self.wandb_run = self.tensorboard = None
        backend = check_logger(backend or getattr(config, "logger", "wandb"))
        if backend == "tensorboard":
            self.tensorboard = _summary_writer(self.run_dir / "tensorboard")
        elif check_wandb_mode(mode) != "disabled":
            import wandb

            # A resumed run continues its W&B run: the id is kept in the run folder (a sweep agent
            # names its runs itself).
            id_file = self.run_dir / "wandb_run_id"
            run_id = id_file.read_text().strip() if id_file.exists() and not os.environ.get("WANDB_SWEEP_ID") else None
            self.wandb_run = wandb.init(
                project=project, name=name, group=group, config=self.config, mode=mode,
                dir=str(self.run_dir), reinit="create_new", id=run_id, resume="allow" if run_id else None,
            )
            if run_id is None:
                id_file.write_text(self.wandb_run.id + "\n")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar metrics at an env/optimiser step."""
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._metrics_file.write(json.dumps(row) + "\n")
        self._metrics_file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(dict(metrics), step=int(step))
        if self.tensorboard is not None:
            for key, value in metrics.items():
                self.tensorboard.add_scalar(key, float(value), int(step))

    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None:
        """Record a picture already written to disk (PNG/GIF)."""
        if self.tensorboard is not None and str(path).endswith(".png"):
            import imageio.v2 as imageio

            self.tensorboard.add_image(key, imageio.imread(path)[..., :3], step or 0, dataformats="HWC")
        if self.wandb_run is not None:
            import wandb

            media = wandb.Video(str(path)) if str(path).endswith((".gif", ".mp4")) else wandb.Image(str(path))
            self.wandb_run.log({key: media}, step=step)

    def log_checkpoint(self, directory: str | Path, name: str, metadata: Mapping[str, Any] | None = None) -> None:
        """Record a checkpoint folder as a W&B model artifact (its model card travels inside)."""
        if self.wandb_run is not None:
            import wandb

            artifact = wandb.Artifact(name, type="model", metadata=dict(metadata or {}))
            artifact.add_dir(str(directory))
            self.wandb_run.log_artifact(artifact)

    def finish(self) -> None:
        """Close the files, write ``metrics.csv`` and end the W&B run."""
        self._metrics_file.close()
        rows = read_jsonl(self.run_dir / "metrics.jsonl")
        keys = sorted({key for row in rows for key in row} - {"step"})
        with open(self.run_dir / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", *keys])
            writer.writeheader()
            writer.writerows(rows)
        if self.wandb_run is not None:
            self.wandb_run.finish()
        if self.tensorboard is not None:
            self.tensorboard.close()

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


def lightning_loggers(run_dir: str | Path, config: Any = None, *, mode: str = "offline",
                      project: str = "worldkit", name: str | None = None, backend: str | None = None) -> list:
    """Loggers for ``lightning.Trainer``: a CSV logger always; TensorBoard, or W&B unless disabled."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    loggers = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if check_logger(backend or getattr(config, "logger", "wandb")) == "tensorboard":
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    elif check_wandb_mode(mode) != "disabled":
        # The mode goes to wandb.init itself: Lightning's offline=True sets WANDB_MODE=dryrun instead,
        # which a process that already ran an offline wandb run takes for online, asking for a login.
        wandb_logger = WandbLogger(project=project, name=name, save_dir=str(run_dir), mode=mode)
        if config is not None:
            wandb_logger.log_hyperparams(config_dict(config))
        loggers.append(wandb_logger)
    return loggers
