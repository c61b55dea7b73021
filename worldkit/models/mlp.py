"""The lightweight world model of world-model-assisted PPO (the paper draft's): encoder, dynamics, decoder.

    encoder   s  -> FC-64-64 -> z
    dynamics  (z, a) -> FC-64-64 -> z'_hat
    decoder   z  -> FC-64 -> s_hat
    L_WM = ||sg(z') - z'_hat||^2 + lambda * ||s - s_hat||^2

The target z' = E(s') is held fixed (stop-gradient): with a trainable target, the cheapest way
to predict it is to make every latent the same. The reconstruction term anchors the encoder to
the state, so ``recon_weight`` must be positive.

The model also implements the :class:`~worldkit.models.protocol.WorldModel` protocol, so
controllers can dream in it. Inside PPO it needs no reward or ending, so those heads are optional
(``heads=True``): a reward head on (z, a, z'_hat) and a continue head on z'_hat, trained when the
model is fitted standalone on transitions that carry rewards (``TransitionDataModule``). The model
is deterministic and Markov: ``observe`` forgets the past and ``temperature`` changes nothing.
"""

from typing import Any, NamedTuple

import gymnasium as gym
import lightning as L
import torch
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable
from worldkit.models.protocol import world_model
from worldkit.nets import mlp
from worldkit.spaces import space_from_dict, space_to_dict


class MLPState(NamedTuple):
    """The latent z (B, latent_dim) of the current observation."""

    z: torch.Tensor


def _refresh_after_load(module: "LatentMLPWorldModel", incompatible_keys) -> None:
    module._refresh_normalizer()


@world_model
@checkpointable
class LatentMLPWorldModel(L.LightningModule):
    """Encoder, latent dynamics and decoder for state observations (a LightningModule).

    Observations are standardised with ``obs_mean``/``obs_std`` buffers (set them from data with
    :meth:`set_normalizer`; they are saved with the weights). Discrete actions are one-hot.
    ``heads`` adds the reward and continue heads dreaming needs; ``action_space`` (a space or its
    :func:`~worldkit.spaces.space_to_dict`) records the env's bounds, Box(-1, 1) or Discrete if None.
    """

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int = 32, hidden: int = 64,
                 recon_weight: float = 1.0, lr: float = 1e-3, discrete_actions: bool = False,
                 heads: bool = False, action_space: "gym.Space | dict[str, Any] | None" = None):
        super().__init__()
        if min(obs_dim, action_dim, latent_dim, hidden) < 1:
            raise ValueError("obs_dim, action_dim, latent_dim and hidden must be positive")
        if recon_weight <= 0:
            raise ValueError(f"recon_weight must be > 0 (it stops the latent collapsing), got {recon_weight}")
        if isinstance(action_space, gym.Space):
            action_space = space_to_dict(action_space)
        self.save_hyperparameters()
        self.encoder = mlp([obs_dim, hidden, hidden, latent_dim])
        self.dynamics = mlp([latent_dim + action_dim, hidden, hidden, latent_dim])
        self.decoder = mlp([latent_dim, hidden, obs_dim])
        if heads:
            self.reward_head = mlp([2 * latent_dim + action_dim, hidden, hidden, 1])
            self.continue_head = mlp([latent_dim, hidden, 1])
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self._identity_normalizer = True  # skip two ops per call where the statistics change nothing
        self.register_load_state_dict_post_hook(_refresh_after_load)
        self.env_spec: str | None = None
        if action_space is not None:
            self._action_space = space_from_dict(action_space)
        elif discrete_actions:
            self._action_space = gym.spaces.Discrete(action_dim)
        else:
            self._action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), dtype="float32")

    @torch.no_grad()
    def set_normalizer(self, observations: torch.Tensor) -> None:
        """Standardise observations with the statistics of a sample of them."""
        self.obs_mean.copy_(observations.mean(0))
        self.obs_std.copy_(observations.std(0).clamp_min(1e-6))
        self._refresh_normalizer()

    @torch.no_grad()
    def set_normalizer_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise with given statistics (e.g. PPO's running ones, to export a model trained inside PPO)."""
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(std.clamp_min(1e-6))
        self._refresh_normalizer()

    def _refresh_normalizer(self) -> None:
        self._identity_normalizer = bool((self.obs_mean == 0).all() and (self.obs_std == 1).all())

    @torch.no_grad()
    def one_step_error(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> float:
        """Latent prediction error relative to predicting no change: mean ||E(s') - D(E(s), a)||^2
        divided by mean ||E(s') - E(s)||^2. Below 1 means the dynamics know something; it does not
        depend on the latent's scale, so models of different sizes compare."""
        z, z_next = self.encode(obs), self.encode(next_obs)
        predicted = self.predict_next(z, action)
        return float((z_next - predicted).pow(2).sum(-1).mean() / (z_next - z).pow(2).sum(-1).mean())

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self._identity_normalizer else (obs - self.obs_mean) / self.obs_std

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """z = E(s) for raw observations."""
        return self.encoder(self.normalize(obs))

    def action_vector(self, action: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One-hot for discrete actions, as given otherwise."""
        if self.hparams.discrete_actions:
            return F.one_hot(action.long().reshape(-1), self.hparams.action_dim).to(dtype)
        if action.shape[-1:] != (self.hparams.action_dim,):
            raise ValueError(f"this model takes actions of shape (B, {self.hparams.action_dim}), got {tuple(action.shape)}")
        return action.to(dtype)

    def predict_next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """z'_hat = D(z, a)."""
        return self.dynamics(torch.cat([z, self.action_vector(action, z.dtype)], dim=-1))

    def losses(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
               reward: torch.Tensor | None = None, terminated: torch.Tensor | None = None,
               z: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The two terms of L_WM and their weighted sum, averaged over the batch; with heads and
        rewards given, the reward (squared error) and continue (cross-entropy) terms join the sum.
        ``z``, if given, is ``encode(obs)`` already computed (with gradients), e.g. by PPO's forward."""
        z = self.encode(obs) if z is None else z
        with torch.no_grad():
            z_next = self.encode(next_obs)
        predicted = self.predict_next(z, action)
        dynamics = (predicted - z_next).pow(2).sum(-1).mean()
        recon = (self.decoder(z) - self.normalize(obs)).pow(2).sum(-1).mean()
        out = {"loss": dynamics + self.hparams.recon_weight * recon, "dynamics": dynamics, "recon": recon}
        if self.hparams.heads and reward is not None and terminated is not None:
            inputs = torch.cat([z, self.action_vector(action, z.dtype), predicted], -1)
            out["reward"] = (self.reward_head(inputs).squeeze(-1) - reward.float()).pow(2).mean()
            out["continue"] = F.binary_cross_entropy_with_logits(self.continue_head(predicted).squeeze(-1),
                                                                 1.0 - terminated.float())
            out["loss"] = out["loss"] + out["reward"] + out["continue"]
        return out

    @torch.no_grad()
    def prediction_error(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Per-sample ||E(s') - D(E(s), a)||^2: the intrinsic reward before scaling by alpha."""
        return (self.predict_next(self.encode(obs), action) - self.encode(next_obs)).pow(2).sum(-1)

    # ------------------------------------------------------------------ the WorldModel protocol

    @property
    def feature_dim(self) -> int:
        return self.hparams.latent_dim

    @property
    def action_space(self) -> gym.Space:
        return self._action_space

    @property
    def observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-float("inf"), float("inf"), (self.hparams.obs_dim,), dtype="float32")

    def initial_state(self, batch_size: int) -> MLPState:
        return MLPState(torch.zeros(batch_size, self.hparams.latent_dim, device=self.obs_mean.device))

    def observe(self, state: MLPState, action: torch.Tensor | None, obs: torch.Tensor) -> MLPState:
        """z = E(s): the model is Markov, so the past does not matter."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.obs_mean.device)
        if obs.dim() != 2 or obs.shape[-1] != self.hparams.obs_dim:
            raise ValueError(f"this model takes observations of shape (B, {self.hparams.obs_dim}), got {tuple(obs.shape)}")
        return MLPState(self.encode(obs))

    def imagine(self, state: MLPState, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[MLPState, torch.Tensor, torch.Tensor]:
        """z' = D(z, a) (deterministic: ``temperature`` and ``generator`` are unused)."""
        if not self.hparams.heads:
            raise ValueError("this LatentMLPWorldModel has no reward or continue head, so it cannot dream: build it "
                             "with heads=True and fit it on transitions with rewards (TransitionDataModule)")
        predicted = self.predict_next(state.z, action)
        reward = self.reward_head(torch.cat([state.z, self.action_vector(action, state.z.dtype), predicted], -1))
        return MLPState(predicted), reward.squeeze(-1), torch.sigmoid(self.continue_head(predicted).squeeze(-1))

    def features(self, state: MLPState) -> torch.Tensor:
        return state.z

    def decode(self, state: MLPState) -> torch.Tensor:
        """Observations (not frames: the model is of states)."""
        return self.decoder(state.z) * self.obs_std + self.obs_mean

    # ------------------------------------------------------------------------------ training

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch["obs"], batch["action"], batch["next_obs"], batch.get("reward"),
                             batch.get("terminated"))
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)
        return losses["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch["obs"], batch["action"], batch["next_obs"], batch.get("reward"),
                             batch.get("terminated"))
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
