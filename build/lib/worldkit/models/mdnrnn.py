"""M of World Models: an LSTM over (z, one-hot a) whose output is a mixture density for the next z.

    h_t = LSTM([z_t, onehot(a_t)], h_{t-1})
    p(z_{t+1} | h_t) = prod_d sum_k pi_dk N(mu_dk, sigma_dk^2)     (K components per latent dim)
    P(terminated_t) = sigmoid(done(h_t, z_{t+1}))
    E[r_t] = P(terminated_t) * r_end(h_t, z_{t+1}) + (1 - P(terminated_t)) * r_go(h_t, z_{t+1})

The step's outcome (done and rewards) is read from the LSTM output *and the latent the step led
to*, by a small MLP, as Dreamer reads reward and continue from the state reached. A task ends on
where the agent arrives (at the box, in the street), which the next frame shows and h_t, which
must first guess that frame, does not: on Sidewalk a linear done head on h_t gave P(done) 0.03
at the steps that reached the box and 0.01 everywhere else, so dreams ended by a constant hazard
and paid a little for every step survived, which CMA-ES learned to collect.

The reward is two outputs, one for the step that ends the episode and one for the steps that do
not, weighted by the done probability. In tasks that pay only on arrival (MiniWorld's), a single
regression head trained on every step learns the average reward per step, a small constant that
a dreaming controller collects by merely staying alive; split, each sees one kind of step, and
reward in the dream has to be earned by reaching states where episodes end well.

A mixture rather than one Gaussian, because one (z, a) can lead to several futures: the box
comes into view or does not. The optional repulsion loss penalises the overlap of components of
the same dimension, which keeps them from collapsing onto each other (a mixture that is one
Gaussian in disguise); the mixture-weight entropy is logged to show whether more than one
component is in use.
"""

from typing import NamedTuple

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable
from worldkit.nets import mlp

LOG_SQRT_2PI = 0.5 * torch.log(torch.tensor(2 * torch.pi)).item()


class Outcome(NamedTuple):
    """What M predicts of a step from the LSTM output and the next latent: the rewards if the
    episode goes on and if it ends, and the done logit, tensors (...)."""

    reward_if_continues: torch.Tensor
    reward_if_ends: torch.Tensor
    done_logit: torch.Tensor

    def expected_reward(self) -> torch.Tensor:
        done = torch.sigmoid(self.done_logit)
        return done * self.reward_if_ends + (1 - done) * self.reward_if_continues


class Mixture(NamedTuple):
    """A Gaussian mixture per latent dimension: tensors (..., latent_dim, K)."""

    logit_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over latent dimensions, for z (..., latent_dim)."""
        normal = -0.5 * ((z.unsqueeze(-1) - self.mu) / self.log_sigma.exp()).pow(2) - self.log_sigma - LOG_SQRT_2PI
        return torch.logsumexp(F.log_softmax(self.logit_pi, -1) + normal, -1).sum(-1)

    def sample(self, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (..., latent_dim): weights softened by ``temperature`` and sigma scaled by its root, as in
        World Models; at 0, the likeliest component's mean."""
        if temperature <= 0:
            pick = self.logit_pi.argmax(-1, keepdim=True)
            return self.mu.gather(-1, pick).squeeze(-1)
        # Gumbel-max: argmax(logits / tau + G), G = -log(-log U), picks k with probability softmax(logits / tau)
        minus_gumbel = torch.rand(self.logit_pi.shape, generator=generator, device=self.mu.device).log_().neg_().log_()
        pick = (self.logit_pi / temperature - minus_gumbel).argmax(-1, keepdim=True)
        mu, log_sigma = self.mu.gather(-1, pick).squeeze(-1), self.log_sigma.gather(-1, pick).squeeze(-1)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        return mu + noise * log_sigma.exp() * temperature**0.5

    def entropy_of_weights(self) -> torch.Tensor:
        """Entropy of the mixture weights per (..., latent_dim), in nats (0: one component used)."""
        log_pi = F.log_softmax(self.logit_pi, -1)
        return -(log_pi.exp() * log_pi).sum(-1)

    def overlap(self) -> torch.Tensor:
        """Mean over latent dimensions and component pairs of exp(-(mu_i - mu_j)^2 / (sigma_i^2 +
        sigma_j^2)), per (...): 1 for identical components, towards 0 for well separated ones."""
        k = self.mu.shape[-1]
        i, j = torch.triu_indices(k, k, offset=1, device=self.mu.device)
        variance = (2 * self.log_sigma).exp()
        overlap = torch.exp(-(self.mu[..., i] - self.mu[..., j]).pow(2) / (variance[..., i] + variance[..., j]))
        return overlap.mean((-2, -1))


@checkpointable
class MDNRNN(L.LightningModule):
    """Mixture-density LSTM over VAE latents, with an outcome head for rewards and done (a LightningModule).

    Trains on batches of latent windows as :class:`worldkit.dream.LatentSequenceDataModule`
    gives: ``mu``, ``logvar`` (B, T+1, Z), ``action`` (B, T), ``reward``, ``terminated`` and
    ``mask`` (B, T).

    Args:
        latent_dim: size of z.
        num_actions: size of the Discrete action space (actions enter one-hot).
        hidden_dim: LSTM size.
        num_mixtures: Gaussian components per latent dimension (K).
        repulsion_weight: weight of the overlap penalty between components (0: off).
        reward_weight: weight of the two rewards' squared errors (each averaged over its own
            kind of step: those that end an episode and those that do not).
        done_weight: weight of the done logit's cross-entropy.
        sample_latents: train on z drawn from each frame's posterior (World Models' choice, an
            augmentation) rather than on its mean, which is what a controller sees through
            ``observe``; with means, dreamed z and real z come from the same distribution.
        lr: Adam's learning rate.
        grad_clip: gradient norm clipped to (0: no clipping).
    """

    def __init__(self, latent_dim: int = 32, num_actions: int = 3, hidden_dim: int = 256, num_mixtures: int = 5,
                 repulsion_weight: float = 0.0, reward_weight: float = 1.0, done_weight: float = 1.0,
                 sample_latents: bool = False, lr: float = 1e-3, grad_clip: float = 1.0):
        super().__init__()
        if min(latent_dim, num_actions, hidden_dim, num_mixtures) < 1:
            raise ValueError("latent_dim, num_actions, hidden_dim and num_mixtures must be positive")
        if min(repulsion_weight, reward_weight, done_weight, grad_clip) < 0:
            raise ValueError("loss weights and grad_clip must be >= 0")
        self.save_hyperparameters()
        self.lstm = nn.LSTM(latent_dim + num_actions, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, 3 * latent_dim * num_mixtures)
        self.outcome_head = mlp([hidden_dim + latent_dim, hidden_dim, hidden_dim, 3])
        # The smallest and largest reward seen in training on steps that go on (row 0) and on steps
        # that end an episode (row 1): outside training each reward is clamped to its own, so a
        # dream that wanders where M saw no data cannot promise more than the task ever paid there.
        self.register_buffer("reward_range", torch.tensor([[float("inf"), float("-inf")]] * 2))

    def forward(self, z: torch.Tensor, action: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple["Mixture", torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run over a sequence: z (B, T, Z) and integer actions (B, T).

        Returns:
            The mixture over each next z (B, T), the LSTM outputs h (B, T, H), and the final LSTM
            state (h, c), each (1, B, H).
        """
        inputs = torch.cat([z, F.one_hot(action.long(), self.hparams.num_actions).to(z.dtype)], -1)
        h, state = self.lstm(inputs, state)
        return self.mixture(h), h, state

    def mixture(self, h: torch.Tensor) -> "Mixture":
        """M's density over the next z, read from LSTM outputs h (..., H)."""
        logit_pi, mu, log_sigma = self.head(h).unflatten(-1, (3, self.hparams.latent_dim, self.hparams.num_mixtures)
                                                          ).unbind(-3)
        return Mixture(logit_pi, mu, log_sigma.clamp(-7, 3))

    def outcome(self, h: torch.Tensor, next_z: torch.Tensor) -> Outcome:
        """The step's rewards and done logit, from LSTM outputs h (..., H) and the latents the steps
        led to (..., Z); outside training, each reward is clamped to the range its kind had in the data."""
        out = self.outcome_head(torch.cat([h, next_z], -1))
        rewards = out[..., :2]
        if not self.training:
            low, high = self.reward_range.unbind(-1)
            rewards = rewards.clamp(torch.where(low.isfinite(), low, -torch.inf), torch.where(high.isfinite(), high, torch.inf))
        return Outcome(rewards[..., 0], rewards[..., 1], out[..., 2])

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-step NLL of z_{t+1} (nats, summed over dims), reward and done losses, the repulsion
        term, and their weighted sum, averaged over real (unpadded) steps."""
        z = batch["mu"]
        if self.hparams.sample_latents and self.training:
            z = z + torch.randn_like(z) * (0.5 * batch["logvar"]).exp()
        mixture, h, _ = self(z[:, :-1], batch["action"])
        outcome = self.outcome(h, z[:, 1:])
        mask, ends = batch["mask"].float(), batch["terminated"].float()
        steps = mask.sum().clamp_min(1)
        nll = -(mixture.log_prob(z[:, 1:]) * mask).sum() / steps
        reward_loss = (_masked_mean((outcome.reward_if_continues - batch["reward"]).pow(2), mask * (1 - ends))
                       + _masked_mean((outcome.reward_if_ends - batch["reward"]).pow(2), mask * ends))
        done_loss = (F.binary_cross_entropy_with_logits(outcome.done_logit, ends, reduction="none") * mask).sum() / steps
        repulsion = (mixture.overlap() * mask).sum() / steps if self.hparams.num_mixtures > 1 else z.new_zeros(())
        hp = self.hparams
        loss = nll + hp.reward_weight * reward_loss + hp.done_weight * done_loss + hp.repulsion_weight * repulsion
        entropy = (mixture.entropy_of_weights().mean(-1) * mask).sum() / steps
        return {"loss": loss, "nll": nll, "reward": reward_loss, "done": done_loss, "repulsion": repulsion,
                "mixture_entropy": entropy}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self._widen_reward_range(batch)
        losses = self.losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True)
        return losses["loss"]

    @torch.no_grad()
    def _widen_reward_range(self, batch: dict[str, torch.Tensor]) -> None:
        for row, kind in enumerate((~batch["terminated"].bool(), batch["terminated"].bool())):
            rewards = batch["reward"][batch["mask"].bool() & kind]
            if len(rewards):
                self.reward_range[row, 0] = torch.minimum(self.reward_range[row, 0], rewards.min())
                self.reward_range[row, 1] = torch.maximum(self.reward_range[row, 1], rewards.max())

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.losses(batch).items()}, prog_bar=True)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        clip = self.hparams.grad_clip or float("inf")
        norm = nn.utils.clip_grad_norm_(self.parameters(), clip)
        self.log("train/grad_norm", norm)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (0 when it is nowhere 1)."""
    return (values * mask).sum() / mask.sum().clamp_min(1)
