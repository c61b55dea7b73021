"""The lightweight world model of world-model-assisted PPO (seed 000): encoder, dynamics, decoder.

    encoder   s  -> FC-64-64 -> z
    dynamics  (z, a) -> FC-64-64 -> z'_hat
    decoder   z  -> FC-64 -> s_hat
    L_WM = ||sg(z') - z'_hat||^2 + lambda * ||s - s_hat||^2

The target z' = E(s') is held fixed (stop-gradient): with a trainable target, the cheapest way
to predict it is to make every latent the same. The reconstruction term anchors the encoder to
the state, so ``recon_weight`` must be positive.
"""

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(inputs, outputs))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@checkpointable
class LatentMLPWorldModel(L.LightningModule):
    """Encoder, latent dynamics and decoder for state observations (a LightningModule).

    Observations are standardised with ``obs_mean``/``obs_std`` buffers (set them from data with
    :meth:`set_normalizer`; they are saved with the weights). Discrete actions are one-hot.
    """

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int = 32, hidden: int = 64,
                 recon_weight: float = 1.0, lr: float = 1e-3, discrete_actions: bool = False):
        super().__init__()
        if min(obs_dim, action_dim, latent_dim, hidden) < 1:
            raise ValueError("obs_dim, action_dim, latent_dim and hidden must be positive")
        if recon_weight <= 0:
            raise ValueError(f"recon_weight must be > 0 (it stops the latent collapsing), got {recon_weight}")
        self.save_hyperparameters()
        self.encoder = mlp([obs_dim, hidden, hidden, latent_dim])
        self.dynamics = mlp([latent_dim + action_dim, hidden, hidden, latent_dim])
        self.decoder = mlp([latent_dim, hidden, obs_dim])
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    @torch.no_grad()
    def set_normalizer(self, observations: torch.Tensor) -> None:
        """Standardise observations with the statistics of a sample of them."""
        self.obs_mean.copy_(observations.mean(0))
        self.obs_std.copy_(observations.std(0).clamp_min(1e-6))

    @torch.no_grad()
    def set_normalizer_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise with given statistics (e.g. PPO's running ones, to export a model trained inside PPO)."""
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(std.clamp_min(1e-6))

    @torch.no_grad()
    def one_step_error(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> float:
        """Latent prediction error relative to predicting no change: mean ||E(s') - D(E(s), a)||^2
        divided by mean ||E(s') - E(s)||^2. Below 1 means the dynamics know something; it does not
        depend on the latent's scale, so models of different sizes compare."""
        z, z_next = self.encode(obs), self.encode(next_obs)
        predicted = self.predict_next(z, action)
        return float((z_next - predicted).pow(2).sum(-1).mean() / (z_next - z).pow(2).sum(-1).mean())

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """z = E(s) for raw observations."""
        return self.encoder(self.normalize(obs))

    def predict_next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """z'_hat = D(z, a)."""
        if self.hparams.discrete_actions:
            action = F.one_hot(action.long().reshape(-1), self.hparams.action_dim).to(z.dtype)
        return self.dynamics(torch.cat([z, action], dim=-1))

    def losses(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two terms of L_WM and their weighted sum, averaged over the batch."""
        z = self.encode(obs)
        with torch.no_grad():
            z_next = self.encode(next_obs)
        dynamics = (self.predict_next(z, action) - z_next).pow(2).sum(-1).mean()
        recon = (self.decoder(z) - self.normalize(obs)).pow(2).sum(-1).mean()
        return {"loss": dynamics + self.hparams.recon_weight * recon, "dynamics": dynamics, "recon": recon}

    @torch.no_grad()
    def prediction_error(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Per-sample ||E(s') - D(E(s), a)||^2: the intrinsic reward before scaling by alpha."""
        return (self.predict_next(self.encode(obs), action) - self.encode(next_obs)).pow(2).sum(-1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch["obs"], batch["action"], batch["next_obs"])
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)
        return losses["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch["obs"], batch["action"], batch["next_obs"])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
