"""World-model-assisted PPO (after the paper draft): a lightweight world model inside PPO's own update.

The world model helps PPO in two ways, both through :class:`~worldkit.controllers.rollout.PPOHook`:

- **features**: the policy and value read the latent z = E(s) (or [z, s]) instead of s;
- **intrinsic reward**: r_int = alpha * ||E(s') - D(E(s), a)||^2, the model's surprise;

and it learns in the same backward pass as PPO: L = L_PPO + beta * L_WM. The encoder is shared,
so it receives gradients from both losses; the target E(s') is held fixed (see
:mod:`worldkit.models.mlp`). Observations reaching the model are PPO's normalised ones, so the
model's own normaliser stays the identity here.
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from worldkit.controllers.rollout import PPOHook, Rollout
from worldkit.models.mlp import LatentMLPWorldModel

PolicyInput = Literal["z", "z_and_s"]


class LatentFeatures(nn.Module):
    """What the actor and critic read: z, or z next to the observation itself."""

    def __init__(self, world_model: LatentMLPWorldModel, policy_input: PolicyInput):
        super().__init__()
        self.world_model, self.policy_input = world_model, policy_input

    def forward(self, obs: Tensor) -> Tensor:
        z = self.world_model.encode(obs)
        return z if self.policy_input == "z" else torch.cat([z, self.world_model.normalize(obs)], dim=-1)

    def numpy_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """The same in numpy, over views of the current weights (what PPO's rollout calls each step)."""
        model = self.world_model
        encoder, z_only = model.encoder.numpy_forward(), self.policy_input == "z"
        identity, mean, std = model._identity_normalizer, model.obs_mean.numpy(), model.obs_std.numpy()

        def forward(obs: np.ndarray) -> np.ndarray:
            x = obs if identity else (obs - mean) / std
            z = encoder(x)
            return z if z_only else np.concatenate([z, x], axis=-1)

        return forward


class WorldModelAssist(nn.Module, PPOHook):
    """The hook that turns the one PPO learner into world-model-assisted PPO.

    Args:
        world_model: The lightweight model; trained by PPO's optimizer unless ``train_world_model``
            is False (a pretrained, frozen encoder).
        alpha: Weight of the intrinsic reward (0 turns it off).
        beta: Weight of L_WM in PPO's loss (0 turns world-model learning off).
        policy_input: ``"z"`` (the paper draft's design) or ``"z_and_s"``.
        train_world_model: False freezes the model (its parameters get no gradient). A model
            trained inside PPO sees PPO's normalised observations and keeps an identity
            normaliser; a pretrained one normalises raw observations itself, so give it a PPO
            with ``normalize_obs=False`` (as ``recipes/wm_ppo_walker.py --world_model=...`` does).
        clip_apart: Clip the world model's gradient norm (encoder included) apart from the
            policy's; jointly, the world model's larger gradients shrink every policy step.
        wm_epochs: In how many of PPO's epochs per update the world model learns (None: all).
            Each epoch revisits the same transitions; fewer cut the world model's cost in
            proportion.
    """

    def __init__(self, world_model: LatentMLPWorldModel, alpha: float = 0.01, beta: float = 1.0,
                 policy_input: PolicyInput = "z", train_world_model: bool = True, clip_apart: bool = False,
                 wm_epochs: int | None = None):
        super().__init__()
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be non-negative, got alpha={alpha}, beta={beta}")
        if wm_epochs is not None and wm_epochs < 1:
            raise ValueError(f"wm_epochs must be at least 1 (or None for every epoch), got {wm_epochs}")
        if policy_input not in ("z", "z_and_s"):
            raise ValueError(f"policy_input must be 'z' or 'z_and_s', got {policy_input!r}")
        self.world_model, self.alpha, self.beta = world_model, alpha, beta
        self.train_world_model, self.clip_apart = train_world_model, clip_apart
        self.wm_epochs, self._learns_this_epoch = wm_epochs, True
        world_model.requires_grad_(train_world_model)
        self.features = LatentFeatures(world_model, policy_input)
        self.last_losses: dict[str, Tensor] = {}

    @property
    def name(self) -> str:
        return "world_model"

    def feature_module(self) -> nn.Module:
        return self.features

    def intrinsic_reward(self, obs: Tensor, actions: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor | None:
        if self.alpha == 0:
            return None
        steps = obs.shape[:2]
        error = self.world_model.prediction_error(obs.flatten(0, 1), actions.flatten(0, 1), next_obs.flatten(0, 1))
        return self.alpha * error.view(steps)

    def on_epoch_start(self, epoch: int) -> None:
        # a flag, not the epoch: a compiled loss is specialised on it, so two versions rather than one per epoch
        self._learns_this_epoch = self.wm_epochs is None or epoch < self.wm_epochs

    def auxiliary_loss(self, minibatch: Rollout, features: Tensor) -> Tensor | None:
        if self.beta == 0 or not self.train_world_model:
            return None
        if not self._learns_this_epoch:
            return None
        z = features[..., : self.world_model.feature_dim]  # E(s), as the actor and critic just computed it
        losses = self.world_model.losses(minibatch.obs, minibatch.actions, minibatch.next_obs, z=z)
        # .item() only when logged: here it would split a compiled loss in two
        self.last_losses = {k: v.detach() for k, v in losses.items()}
        return self.beta * losses["loss"]

    def export_world_model(self, agent: nn.Module) -> LatentMLPWorldModel:
        """A copy of the world model that takes raw observations: PPO's running observation
        statistics (which it was trained behind) folded into the model's own normaliser."""
        exported = copy.deepcopy(self.world_model).requires_grad_(True)
        if getattr(agent, "obs_rms", None) is not None:
            exported.set_normalizer_stats(agent.obs_rms.mean.float(), (agent.obs_rms.var + 1e-8).sqrt().float())
        return exported

    def on_update_end(self, metrics: dict[str, float]) -> None:
        metrics.update({f"world_model/{k}": v.item() for k, v in self.last_losses.items()})


def load_policy_with_features(policy_dir: "str | Path", world_model_dir: "str | Path",
                              policy_input: PolicyInput = "z") -> nn.Module:
    """A WM-PPO run's saved policy, whose actor and critic read the world model's latents.

    Its checkpoint holds the encoder's weights under ``features.``, but a ``PPOAgent`` rebuilt from
    hyperparameters alone has no encoder to put them in: the run's exported world model gives
    the encoder its shape, and the policy's own weights (its normaliser included) then fill it.
    """
    from safetensors.torch import load_file

    from worldkit.controllers.policy import PPOAgent

    policy_dir = Path(policy_dir)
    config = json.loads((policy_dir / "config.json").read_text())
    features = LatentFeatures(LatentMLPWorldModel.from_pretrained(world_model_dir), policy_input)
    agent = PPOAgent(**config["hparams"], features=features)
    agent.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in load_file(policy_dir / "model.safetensors").items()})
    return agent.eval()
