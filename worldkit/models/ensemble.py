"""A dynamics ensemble: N MLPs predicting (s' - s, r, done logit) from (s, a), on raw states.

Why an ensemble: one model's held-out loss says how wrong it is on average, on the data it was
tested on; the members' disagreement says where they are unsure, on the very states a
controller is about to dream from. Members differ only by initialisation and minibatch order
(size 1 is the adaptive-imagination write-up's single model).

Why deltas and normalisation: next states are mostly the current state, so predicting the change
is an easier target; inputs and targets are standardised with statistics of the training data
(buffers, saved with the weights), so every output dimension counts equally in the loss and the
loss is in units of each target's spread (the write-up's ``exp(-loss)`` confidence needs that).

The model implements the :class:`~worldkit.models.protocol.WorldModel` protocol with the state
being the observation itself, so DreamEnv, CMA-ES or PPO can dream in it.
"""

from typing import Any, NamedTuple

import gymnasium as gym
import lightning as L
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable
from worldkit.models.protocol import world_model
from worldkit.spaces import action_size, as_space, require_flat_box, space_to_dict

__all__ = ["DynamicsEnsemble", "EnsembleState"]

TRANSITION_KEYS = ("obs", "action", "reward", "next_obs", "terminated")


class EnsembleState(NamedTuple):
    """The dream state of a :class:`DynamicsEnsemble`: the (raw) observation, (B, obs_dim)."""

    obs: Tensor


class EnsembleLinear(nn.Module):
    """N independent linear layers applied in one batched matmul: (N, B, in) -> (N, B, out)."""

    def __init__(self, members: int, inputs: int, outputs: int):
        super().__init__()
        bound = 1 / inputs**0.5  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(members, inputs, outputs).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, outputs).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


@world_model
@checkpointable
class DynamicsEnsemble(L.LightningModule):
    """(s, a) -> (s' - s, r, done logit), by ``ensemble_size`` MLPs with SiLU activations.

    Args:
        observation_space: A flat Box (or its :func:`worldkit.spaces.space_to_dict` description).
        action_space: A 1-D Box (actions are clipped to its bounds, as the env does) or a
            Discrete space (actions are one-hot).
        ensemble_size: Number of members; 1 is the adaptive-imagination write-up's single model.
        hidden_sizes: Widths of each member's hidden layers.
        lr: Adam's learning rate.
        weight_decay: Adam's L2 penalty (small: it keeps members from fitting noise).
        done_threshold: A dreamed step terminates when the done probability exceeds this.

    Train it with :meth:`losses` (any loop) or ``lightning.Trainer`` on a
    :class:`~worldkit.data.TransitionDataModule` (call :meth:`set_normalizer` first).
    """

    def __init__(self, observation_space: gym.Space | dict[str, Any], action_space: gym.Space | dict[str, Any],
                 ensemble_size: int = 5, hidden_sizes: tuple[int, ...] | list[int] = (200, 200),
                 lr: float = 1e-3, weight_decay: float = 1e-5, done_threshold: float = 0.5):
        super().__init__()
        self.observation_space, self.action_space = as_space(observation_space), as_space(action_space)
        require_flat_box(self.observation_space, "the dynamics ensemble")
        action_size(self.action_space, "the dynamics ensemble")
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        if ensemble_size < 1:
            raise ValueError(f"ensemble_size must be at least 1, got {ensemble_size}")
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be one or more positive widths, got {hidden_sizes}")
        if not 0 < done_threshold < 1:
            raise ValueError(f"done_threshold must be in (0, 1), got {done_threshold}")
        self.save_hyperparameters({
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "ensemble_size": ensemble_size, "hidden_sizes": list(hidden_sizes),
            "lr": lr, "weight_decay": weight_decay, "done_threshold": done_threshold,
        })
        self.env_spec: str | None = None
        self.obs_dim = self.observation_space.shape[0]
        self.action_dim = int(self.action_space.n) if self.discrete else self.action_space.shape[0]
        widths = [self.obs_dim + self.action_dim, *hidden_sizes, self.obs_dim + 2]  # delta, reward, done logit
        self.layers = nn.ModuleList(EnsembleLinear(ensemble_size, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.register_buffer("input_mean", torch.zeros(widths[0]))
        self.register_buffer("input_std", torch.ones(widths[0]))
        self.register_buffer("target_mean", torch.zeros(self.obs_dim + 1))  # delta and reward
        self.register_buffer("target_std", torch.ones(self.obs_dim + 1))
        if not self.discrete:
            self.register_buffer("action_low", torch.as_tensor(self.action_space.low, dtype=torch.float32), persistent=False)
            self.register_buffer("action_high", torch.as_tensor(self.action_space.high, dtype=torch.float32), persistent=False)

    @property
    def ensemble_size(self) -> int:
        return self.hparams.ensemble_size

    # ------------------------------------------------------------------------- the network

    def action_input(self, action: Tensor) -> Tensor:
        """Actions as the network reads them: one-hot, or clipped to the Box bounds."""
        if self.discrete:
            return F.one_hot(action.long(), self.action_dim).float()
        return action.float().clamp(self.action_low, self.action_high)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised predictions (members, B, obs_dim + 1) of [delta, reward], and done logits (members, B).

        ``obs`` and ``action`` are (B, ...) for every member alike, or (members, B, ...), one
        batch per member (how members train on different minibatches).
        """
        x = (torch.cat([obs.float(), self.action_input(action)], -1) - self.input_mean) / self.input_std
        if x.dim() == 2:
            x = x.expand(self.ensemble_size, *x.shape)
        *hidden, last = self.layers
        for layer in hidden:
            x = F.silu(layer(x))
        out = last(x)
        return out[..., :-1], out[..., -1]

    def targets(self, obs: Tensor, reward: Tensor, next_obs: Tensor) -> Tensor:
        """Normalised [s' - s, r], what :meth:`forward` predicts."""
        return (torch.cat([next_obs - obs, reward.unsqueeze(-1)], -1).float() - self.target_mean) / self.target_std

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The adaptive-imagination write-up's loss, per member and summed over members: MSE of the
        normalised state change, MSE of the normalised reward, BCE of the done head (termination
        only, never a time limit). ``batch`` has :data:`TRANSITION_KEYS`, shaped (B, ...) or (members, B, ...)."""
        prediction, done_logit = self(batch["obs"], batch["action"])
        target = self.targets(batch["obs"], batch["reward"], batch["next_obs"])
        if target.dim() == 2:
            target = target.expand_as(prediction)
        terminated = batch["terminated"].float().expand_as(done_logit)
        state = (prediction[..., :-1] - target[..., :-1]).square().mean(-1).mean(-1)  # (members,)
        reward = (prediction[..., -1] - target[..., -1]).square().mean(-1)
        done = F.binary_cross_entropy_with_logits(done_logit, terminated, reduction="none").mean(-1)
        per_member = state + reward + done
        return {"loss": per_member.sum(), "per_member": per_member.detach(), "state": state.mean().detach(),
                "reward": reward.mean().detach(), "done": done.mean().detach()}

    @torch.no_grad()
    def set_normalizer(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor) -> None:
        """Standardise inputs and targets with the statistics of (a sample of) the training data."""
        inputs = torch.cat([obs.float(), self.action_input(action)], -1)
        self.input_mean.copy_(inputs.mean(0))
        self.input_std.copy_(inputs.std(0).nan_to_num(1.0).clamp_min(1e-6))
        if self.discrete:  # one-hot columns stay as they are
            self.input_mean[self.obs_dim:] = 0.0
            self.input_std[self.obs_dim:] = 1.0
        targets = torch.cat([next_obs - obs, reward.unsqueeze(-1)], -1).float()
        self.target_mean.copy_(targets.mean(0))
        self.target_std.copy_(targets.std(0).nan_to_num(1.0).clamp_min(1e-6))

    # --------------------------------------------------------------------- predictions

    @torch.no_grad()
    def predict(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every member's raw next observation (members, B, obs_dim), reward and done probability (members, B)."""
        prediction, done_logit = self(obs, action)
        # a pessimistic dream asks for the spread of this same prediction next: keep it, with the weights' versions
        self._last_prediction = (obs, action, self._versions(), prediction)
        raw = prediction * self.target_std + self.target_mean
        return obs.float() + raw[..., :-1], raw[..., -1], torch.sigmoid(done_logit)

    @torch.no_grad()
    def held_out_loss(self, batch: dict[str, Tensor]) -> float:
        """The loss on transitions the members never trained on, averaged over members."""
        return float(self.losses(batch)["per_member"].mean())

    @torch.no_grad()
    def disagreement(self, obs: Tensor, action: Tensor) -> Tensor:
        """Per sample (B,): the variance across members of the normalised [delta, reward]
        prediction, averaged over its dimensions. Zero for a single model."""
        if self.ensemble_size == 1:
            return torch.zeros(obs.shape[0], device=obs.device)
        last_obs, last_action, version, prediction = getattr(self, "_last_prediction", (None,) * 4)
        if obs is not last_obs or action is not last_action or version != self._versions():
            prediction, _ = self(obs, action)
        return prediction.var(0, unbiased=False).mean(-1)

    def _versions(self) -> tuple[int, ...]:
        """In-place change counters of every weight and normaliser: equal, the network is unchanged."""
        return tuple(t._version for t in (*self.parameters(), *self.buffers()))

    def uncertainty(self, state: EnsembleState, action: Tensor) -> Tensor:
        """Per sample (B,): the members' standard deviation about a step, in normalised units (the
        square root of :meth:`disagreement`); what a pessimistic dream subtracts from its reward."""
        return self.disagreement(state.obs, action).sqrt()

    @torch.no_grad()
    def prediction_error(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor) -> Tensor:
        """Per sample (B,): squared error of the members' mean normalised prediction of [delta, reward]."""
        prediction, _ = self(obs, action)
        return (prediction.mean(0) - self.targets(obs, reward, next_obs)).square().mean(-1)

    # ------------------------------------------------------------- the WorldModel protocol

    @property
    def feature_dim(self) -> int:
        return self.obs_dim

    def initial_state(self, batch_size: int) -> EnsembleState:
        return EnsembleState(torch.zeros(batch_size, self.obs_dim, device=self.input_mean.device))

    def observe(self, state: EnsembleState, action: Tensor | None, obs: Tensor) -> EnsembleState:
        """The state is the observation: a fully observed, Markov env needs no filtering."""
        return EnsembleState(obs.float())

    @torch.no_grad()
    def imagine(self, state: EnsembleState, action: Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[EnsembleState, Tensor, Tensor]:
        """One dreamed step. ``temperature`` > 0: each sample follows a randomly drawn member
        (the ensemble's disagreement is its randomness); 0: the members' mean."""
        next_obs, reward, done = self.predict(state.obs, action)
        if temperature == 0 or self.ensemble_size == 1:
            next_obs, reward, done = next_obs.mean(0), reward.mean(0), done.mean(0)
        else:
            batch = state.obs.shape[0]
            member = torch.randint(self.ensemble_size, (batch,), generator=generator, device=next_obs.device)
            rows = torch.arange(batch, device=next_obs.device)
            next_obs, reward, done = next_obs[member, rows], reward[member, rows], done[member, rows]
        return EnsembleState(next_obs), reward, 1.0 - done

    def features(self, state: EnsembleState) -> Tensor:
        return state.obs

    def decode(self, state: EnsembleState) -> Tensor:
        """Observations: the state is the observation itself."""
        return state.obs

    # -------------------------------------------------------------------------- Lightning

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "per_member"}, prog_bar=True)
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self.losses(batch)
        self.log("val/loss", losses["per_member"].mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
