"""lightning.Trainer settings shared by every world-model recipe.

World models train through ``lightning.Trainer``, so the same recipe runs on a 2-core
CPU, on one GPU, or on many GPUs and nodes: only :class:`TrainerConfig` changes.
"""

from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from worldkit.tracking import lightning_loggers


@dataclass
class TrainerConfig:
    """Where and how long a world model trains (each field is a recipe flag)."""

    max_steps: int = 5_000
    """optimiser steps"""
    accelerator: str = "auto"
    """cpu, gpu, or auto"""
    devices: str = "auto"
    """number of devices per node (e.g. 2), a list such as 0,1, or auto"""
    strategy: str = "auto"
    """auto, ddp, ddp_spawn, fsdp, ..."""
    num_nodes: int = 1
    """machines taking part; launch one process per node (see docs/scaling.md)"""
    precision: str = "32-true"
    """32-true, bf16-mixed, 16-mixed"""
    val_check_interval: int = 500
    """optimiser steps between validations"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.num_nodes < 1:
            raise ValueError(f"num_nodes must be at least 1, got {self.num_nodes}")


def make_trainer(config: TrainerConfig, run_dir: str | Path, *, wandb_mode: str = "offline",
                 project: str = "worldkit", hparams: object = None) -> L.Trainer:
    """A Trainer that logs to ``run_dir`` (and W&B) and keeps ``last.ckpt`` there for resuming."""
    run_dir = Path(run_dir)
    devices: str | int = int(config.devices) if config.devices.isdigit() else config.devices
    return L.Trainer(
        max_steps=config.max_steps,
        accelerator=config.accelerator,
        devices=devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,
        val_check_interval=config.val_check_interval,
        check_val_every_n_epoch=None,
        logger=lightning_loggers(run_dir, hparams, mode=wandb_mode, project=project),
        callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0)],
        enable_progress_bar=config.progress,
        enable_model_summary=getattr(hparams, "verbose", True),  # a quiet console unless --verbose
        default_root_dir=str(run_dir),
        log_every_n_steps=10,
    )
