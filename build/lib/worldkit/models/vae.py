"""V of World Models: a convolutional VAE that turns uint8 HWC frames into a latent z.

    frame (H, W, C) uint8 -> [0, 1], CHW, padded to a multiple of 2^depth
      -> depth x (conv 4x4 stride 2, ReLU) -> FC -> (mu, log sigma^2) of z
    z -> FC -> depth x (transposed conv 4x4 stride 2) -> sigmoid -> cropped frame
    loss = sum of squared pixel errors + beta_t * KL(q(z|x) || N(0, I))

``beta_t`` grows linearly from 0 to ``beta`` over ``kl_warmup_steps``: early on the decoder
learns to use z before the KL term can pull every posterior onto the prior, the collapse in
which every reconstruction is the data's mean colour. ``beta`` below 1 keeps that pull weaker.

With ``skips=True`` the decoder also reads the encoder's feature maps (U-net style), which
sharpens reconstructions, but lets the decoder bypass z, so z alone (all a dream has) may carry
less. Each sample's skips are dropped with probability ``skip_dropout`` during training, so the
decoder also learns to draw from z alone; :meth:`ConvVAE.decode` (the dream's path) always does.
"""

import math

import lightning as L
import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable


class FrameShapeError(ValueError):
    """Frames of another shape than the VAE was built for."""


@checkpointable
class ConvVAE(L.LightningModule):
    """Convolutional VAE for uint8 HWC frames (a LightningModule).

    Trains on batches with an ``"obs"`` entry of uint8 frames (B, H, W, C), as
    :class:`worldkit.data.TransitionDataModule` gives.

    Args:
        frame_shape: (height, width, channels) of the frames; any other shape is refused.
        latent_dim: size of z.
        channels: output channels of each stride-2 convolution (the depth is its length).
        beta: weight of the KL term once warmed up.
        kl_warmup_steps: optimiser steps over which the KL weight grows from 0 to ``beta``.
        skips: U-net skip connections from encoder to decoder.
        skip_dropout: probability that a training sample's skips are zeroed (``skips`` only).
        lr: Adam's learning rate.
        diagnostics_every: optimiser steps between the costlier diagnostics (latent ranks,
            per-loss gradient norms); 0 turns them off.
    """

    def __init__(self, frame_shape: tuple[int, int, int] = (60, 80, 3), latent_dim: int = 32,
                 channels: tuple[int, ...] = (32, 64, 128, 256), beta: float = 0.5, kl_warmup_steps: int = 500,
                 skips: bool = False, skip_dropout: float = 0.5, lr: float = 1e-3, diagnostics_every: int = 50):
        super().__init__()
        frame_shape, channels = tuple(int(s) for s in frame_shape), tuple(int(c) for c in channels)
        if len(frame_shape) != 3 or min(frame_shape) < 1:
            raise ValueError(f"frame_shape must be (height, width, channels), got {frame_shape}")
        if latent_dim < 1 or not channels or min(channels) < 1:
            raise ValueError("latent_dim and every entry of channels must be positive")
        if beta < 0 or kl_warmup_steps < 0 or not 0 <= skip_dropout <= 1:
            raise ValueError("beta and kl_warmup_steps must be >= 0, skip_dropout in [0, 1]")
        self.save_hyperparameters()
        self.frame_shape = frame_shape
        height, width, colours = frame_shape
        scale = 2 ** len(channels)
        padded = (math.ceil(height / scale) * scale, math.ceil(width / scale) * scale)
        top, left = (padded[0] - height) // 2, (padded[1] - width) // 2
        self._pad = (left, padded[1] - width - left, top, padded[0] - height - top)  # F.pad order
        self._bottom = (channels[-1], padded[0] // scale, padded[1] // scale)

        inputs = (colours, *channels[:-1])
        self.encoder = nn.ModuleList(nn.Conv2d(i, o, 4, 2, 1) for i, o in zip(inputs, channels))
        flat = math.prod(self._bottom)
        self.posterior = nn.Linear(flat, 2 * latent_dim)
        self.expand = nn.Linear(latent_dim, flat)
        widen = 2 if skips else 1  # a skip doubles the channels a decoder layer reads
        decoder_in = [channels[-1]] + [widen * c for c in reversed(channels[:-1])]
        decoder_out = list(reversed(channels[:-1])) + [colours]
        self.decoder = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(decoder_in, decoder_out))

    def check_frames(self, frames: torch.Tensor) -> None:
        """Raise :class:`FrameShapeError` unless ``frames`` is (..., H, W, C) of this VAE's shape."""
        if frames.dim() < 3 or tuple(frames.shape[-3:]) != self.frame_shape:
            raise FrameShapeError(
                f"this VAE takes frames of shape {self.frame_shape} (height, width, channels), got frames of "
                f"shape {tuple(frames.shape[-3:])} (batch {tuple(frames.shape[:-3])}): make the env with "
                f"size=({self.frame_shape[0]}, {self.frame_shape[1]}) (or wrap it in worldkit.envs.ResizeFrames), "
                "or train a VAE on these frames"
            )

    def _features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Each encoder layer's feature map, for uint8 (or [0, 1] float) frames (B, H, W, C)."""
        self.check_frames(frames)
        x = frames.float() / 255 if frames.dtype == torch.uint8 else frames.float()
        x = F.pad(rearrange(x, "b h w c -> b c h w"), self._pad, mode="replicate")
        features = []
        for conv in self.encoder:
            x = F.relu(conv(x))
            features.append(x)
        return features

    def _posterior(self, bottom: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.posterior(bottom.flatten(1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12, 6)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | frames) for frames (..., H, W, C)."""
        batch = frames.shape[:-3]
        mu, logvar = self._posterior(self._features(frames.reshape(-1, *frames.shape[-3:]))[-1])
        return mu.reshape(*batch, -1), logvar.reshape(*batch, -1)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic z a controller sees for real frames."""
        return self.encode(frames)[0]

    def decode(self, z: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Frames in [0, 1], (..., H, W, C), from z (..., latent_dim): from z alone unless ``skips``."""
        batch = z.shape[:-1]
        x = F.relu(self.expand(z.reshape(-1, z.shape[-1]))).reshape(-1, *self._bottom)
        for i, deconv in enumerate(self.decoder):
            if i > 0:
                x = F.relu(x)
                if self.hparams.skips:  # zeros stand for the skips when drawing from z alone
                    x = torch.cat([x, skips[-1 - i] if skips is not None else torch.zeros_like(x)], dim=1)
            x = deconv(x)
        left, right, top, bottom = self._pad
        x = torch.sigmoid(x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right])
        return rearrange(x, "b c h w -> b h w c").reshape(*batch, *self.frame_shape)

    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames in [0, 1] decoded from the posterior mean (and the skips, where the VAE has them)."""
        features = self._features(frames.reshape(-1, *frames.shape[-3:]))
        mu, _ = self._posterior(features[-1])
        return self.decode(mu, features if self.hparams.skips else None).reshape(frames.shape)

    def kl_weight(self) -> float:
        """beta_t: the KL term's weight at the current optimiser step."""
        warmup = self.hparams.kl_warmup_steps
        return self.hparams.beta * (min(1.0, self.global_step / warmup) if warmup else 1.0)

    def losses(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction (summed squared error per frame) and KL (nats per frame), batch means;
        also the posterior means ``mu`` and the ``target`` frames in [0, 1], for diagnostics."""
        features = self._features(frames)
        mu, logvar = self._posterior(features[-1])
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        skips = None
        if self.hparams.skips:
            keep = torch.rand(len(z), 1, 1, 1, device=z.device) >= (self.hparams.skip_dropout if self.training else 0)
            skips = [f * keep for f in features]
        target = frames.float() / 255
        recon = (self.decode(z, skips) - target).pow(2).flatten(1).sum(-1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        return {"recon": recon, "kl": kl, "mu": mu, "target": target}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.losses(batch["obs"])
        beta = self.kl_weight()
        loss = out["recon"] + beta * out["kl"]
        self.log_dict({"train/loss": loss, "train/recon": out["recon"], "train/kl": out["kl"], "train/beta": beta},
                      prog_bar=True)
        every = self.hparams.diagnostics_every
        if every and self.global_step % every == 0:
            self.log_dict(self._diagnostics(out, beta))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.losses(batch["obs"])
        mean_frame_error = (out["target"] - out["target"].mean(0)).pow(2).flatten(1).sum(-1).mean()
        self.log_dict({"val/recon": out["recon"], "val/kl": out["kl"], "val/mean_frame_recon": mean_frame_error},
                      prog_bar=True)

    def _diagnostics(self, out: dict[str, torch.Tensor], beta: float) -> dict[str, float]:
        """Latent (effective) rank and each loss's gradient on the encoder: the signs of a collapse."""
        stats = {f"diag/{k}": v for k, v in latent_ranks(out["mu"].detach()).items()}
        shared = list(self.encoder.parameters())
        grads = [torch.autograd.grad(term, shared, retain_graph=True) for term in (out["recon"], beta * out["kl"])]
        recon_grad, kl_grad = (torch.cat([g.flatten() for g in grad]) for grad in grads)
        stats["diag/grad_norm_recon"], stats["diag/grad_norm_kl"] = recon_grad.norm().item(), kl_grad.norm().item()
        stats["diag/grad_cosine_recon_kl"] = F.cosine_similarity(recon_grad, kl_grad, dim=0).item()
        if self.hparams.skips:  # what the dream gets: the decoder drawing from z alone
            with torch.no_grad():
                z_only = self.decode(out["mu"].detach()) - out["target"]
            stats["diag/recon_z_only"] = z_only.pow(2).flatten(1).sum(-1).mean().item()
        return stats

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def latent_ranks(z: torch.Tensor) -> dict[str, float]:
    """Rank and effective rank (exp of the entropy of normalised singular values, Roy & Vetterli
    2007) of a batch of latents (N, D), centred: how many directions the codes really use."""
    centred = z.float() - z.float().mean(0)
    singular = torch.linalg.svdvals(centred)
    p = singular / singular.sum().clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    rank = int((singular > singular.max() * max(z.shape) * torch.finfo(torch.float32).eps).sum())
    return {"latent_rank": float(rank), "latent_effective_rank": entropy.exp().item()}
