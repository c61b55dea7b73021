"""The actor-critic that PPO trains: MLPs over optional features, with normalisation buffers."""

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable
from worldkit.nets import ACTIVATIONS, mlp, numpy_layers
from worldkit.normalize import ArrayT, RunningMeanStd
from worldkit.spaces import action_size, as_space, space_to_dict

__all__ = ["MLP", "PPOAgent"]

_LOG_2PI = math.log(2 * math.pi)


@checkpointable
class PPOAgent(nn.Module):
    """Actor and critic MLPs over an optional feature module, with normalisation statistics.

    Box actions get a diagonal Gaussian whose log-std is a learned vector (state-independent);
    Discrete actions get a categorical over logits. ``forward`` and the distribution methods take
    *normalised* observations (what the rollout stores); :meth:`act` takes raw ones.

    Args:
        observation_space: A Box, or its :func:`worldkit.spaces.space_to_dict` description.
        action_space: A 1-D Box or a Discrete space (or its description).
        hidden_sizes: Widths of the actor's and of the critic's hidden layers.
        normalize_obs: Keep running observation statistics (``obs_rms``) and normalise with them.
        normalize_reward: Keep running statistics of the discounted return (``return_rms``);
            only the learner uses them, they are here so a checkpoint can resume training.
        obs_clip: Normalised observations are clipped to ``[-obs_clip, obs_clip]``.
        activation: ``"tanh"`` (CleanRL's) or ``"relu"`` between hidden layers.
        log_std_init: The Gaussian's initial log-std (Box actions; unused for Discrete); 0 is
            CleanRL's, RL Zoo's HalfCheetah tuning starts at -2.
        ortho_init: Orthogonal weights (CleanRL's scheme: gain sqrt(2), 0.01 for the actor's last
            layer, 1 for the critic's); PyTorch's default initialisation otherwise.
        features: Maps normalised observations to the actor's and critic's input (a hook's
            :meth:`PPOHook.feature_module`); identity if None. It is not in ``hparams``: rebuild
            such an agent with ``PPOAgent(**hparams, features=module)``.
    """

    def __init__(
        self,
        observation_space: gym.Space | dict[str, Any],
        action_space: gym.Space | dict[str, Any],
        hidden_sizes: Sequence[int] = (64, 64),
        normalize_obs: bool = True,
        normalize_reward: bool = True,
        obs_clip: float = 10.0,
        features: nn.Module | None = None,
        activation: str = "tanh",
        log_std_init: float = 0.0,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        self.observation_space = as_space(observation_space)
        self.action_space = as_space(action_space)
        _check_supported(self.observation_space, self.action_space)
        self.hparams = {
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "hidden_sizes": list(hidden_sizes),
            "normalize_obs": normalize_obs,
            "normalize_reward": normalize_reward,
            "obs_clip": obs_clip,
            "activation": activation,
            "log_std_init": log_std_init,
            "ortho_init": ortho_init,
        }
        obs_shape = self.observation_space.shape
        self.obs_clip = obs_clip
        self.obs_rms = RunningMeanStd(obs_shape) if normalize_obs else None
        self.return_rms = RunningMeanStd() if normalize_reward else None

        if features is None and len(obs_shape) != 1:
            raise ValueError(
                f"PPO's MLP takes flat observations, not shape {obs_shape}: pass a hook whose "
                "feature_module() maps them to a vector (e.g. a CNN encoder)"
            )
        self.features = features if features is not None else nn.Identity()
        with torch.no_grad():
            feature_dim = self.features(torch.zeros(1, *obs_shape)).shape[-1]

        self.continuous = isinstance(self.action_space, gym.spaces.Box)
        if self.continuous:
            action_dim = self.action_space.shape[0]
            self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
            self.register_buffer("action_low", torch.as_tensor(self.action_space.low), persistent=False)
            self.register_buffer("action_high", torch.as_tensor(self.action_space.high), persistent=False)
        else:
            action_dim = int(self.action_space.n)
        self.action_dim = action_dim
        # With ortho_init, CleanRL's initialisation: a small last actor layer, so the first policy
        # is near uniform around 0, and a unit-gain last critic layer.
        self.actor = MLP(feature_dim, hidden_sizes, action_dim, activation, out_gain=0.01 if ortho_init else None)
        self.critic = MLP(feature_dim, hidden_sizes, 1, activation, out_gain=1.0 if ortho_init else None)

    def normalize(self, obs: ArrayT) -> ArrayT:
        """Raw float observations (tensor or array) to what the networks see; statistics stay as they are."""
        return obs if self.obs_rms is None else self.obs_rms.normalize(obs, self.obs_clip)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Policy output (Gaussian mean or logits) and value, for normalised observations."""
        return self.heads(self.features(obs))

    def heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Policy output and value from the feature module's output (PPO's update computes the
        features itself, so the hooks' auxiliary losses can reuse them)."""
        return self.actor(features), self.critic(features).squeeze(-1)

    def policy(self, obs: Tensor) -> Tensor:
        """Gaussian mean or logits for normalised observations (skips the critic)."""
        return self.actor(self.features(obs))

    def value(self, obs: Tensor) -> Tensor:
        """State values for normalised observations."""
        return self.critic(self.features(obs)).squeeze(-1)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
        """Exploration noise for :meth:`sample` under the current policy: Gaussian with the
        policy's std, or Gumbel noise for the categorical (the Gumbel-max trick).

        Drawing a whole rollout's noise at once spares the rollout two ops per step.
        """
        if self.continuous:
            return torch.randn(*shape, self.action_dim, generator=generator) * self.log_std.detach().exp()
        return -torch.empty(*shape, self.action_dim).exponential_(generator=generator).log()

    def sample(self, policy_out: Tensor, noise: Tensor) -> Tensor:
        """Actions from the policy's output and :meth:`noise` (unclipped: log-probs are of exactly
        this sample)."""
        return policy_out + noise if self.continuous else (policy_out + noise).argmax(-1)

    def mode(self, policy_out: Tensor) -> Tensor:
        """The most likely action: the Gaussian mean, or the argmax of the logits."""
        return policy_out if self.continuous else policy_out.argmax(-1)

    def log_prob_entropy(self, policy_out: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probability of ``actions`` and the policy's entropy, one value per sample."""
        if self.continuous:
            z = (actions - policy_out) * torch.exp(-self.log_std)
            log_prob = (-0.5 * z.square() - self.log_std).sum(-1) - 0.5 * _LOG_2PI * z.shape[-1]
            entropy = (0.5 + 0.5 * _LOG_2PI + self.log_std).sum()
            return log_prob, entropy.expand(log_prob.shape)
        log_probs = policy_out.log_softmax(-1)
        log_prob = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return log_prob, -(log_probs.exp() * log_probs).sum(-1)

    def rollout_actor(self) -> "Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]":
        """``(normalised obs, noise) -> (action as sampled, action for the env)``, in numpy.

        What a rollout calls at every env step: :meth:`policy`, :meth:`sample` and :meth:`to_env`
        with the actor's layers run by numpy on views of the current weights. For one env's
        single row numpy's cost per call is a fraction of torch's, which saves about a tenth of
        PPO's time. The result equals the torch path up to float rounding; log-probabilities are
        computed afterwards, by torch, from the actions returned here.
        """
        actor, features = self.actor.numpy_forward(), self._numpy_features()
        continuous = self.continuous
        low, high = (self.action_low.numpy(), self.action_high.numpy()) if continuous else (None, None)

        def act(obs: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = features(obs)
            out = actor(x) + noise
            if continuous:
                return out, np.clip(out, low, high)
            action = out.argmax(-1)
            return action, action

        return act

    def _numpy_features(self) -> Callable[[np.ndarray], np.ndarray]:
        """The feature module in numpy: its own ``numpy_forward`` if it has one, else through torch."""
        if isinstance(self.features, nn.Identity):
            return lambda obs: obs
        if hasattr(self.features, "numpy_forward"):
            return self.features.numpy_forward()
        return lambda obs: self.features(torch.from_numpy(obs)).numpy()

    def to_env(self, actions: Tensor) -> Tensor:
        """Actions as the env takes them: Gaussian samples clipped to the Box bounds."""
        return actions.clamp(self.action_low, self.action_high) if self.continuous else actions

    @torch.no_grad()
    def act(
        self, obs: np.ndarray | Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Env-ready actions for a batch of raw observations, normalised with the frozen statistics."""
        policy_out = self.policy(self.normalize(torch.as_tensor(obs, dtype=torch.float32)))
        if deterministic:
            actions = self.mode(policy_out)
        else:
            actions = self.sample(policy_out, self.noise(policy_out.shape[:-1], generator))
        return self.to_env(actions)

    def check_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Raise a ValueError naming both spaces unless the env's spaces are the ones this agent was built for."""
        _check_supported(observation_space, action_space)
        for what, mine, theirs in (
            ("observation", self.observation_space, observation_space),
            ("action", self.action_space, action_space),
        ):
            if space_to_dict(mine) != space_to_dict(theirs):
                raise ValueError(f"this agent was built for {what} space {mine}, but the env has {theirs}")


def _check_supported(observation_space: gym.Space, action_space: gym.Space) -> None:
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"PPO needs Box observations, not {observation_space}")
    action_size(action_space, "PPO")


class MLP(nn.Module):
    """The actor's or critic's MLP: :func:`worldkit.nets.mlp` with tanh or relu, orthogonally
    initialised (CleanRL's scheme, ``out_gain`` for the last layer) unless ``out_gain`` is None.

    Only its Linear layers are kept, as the ModuleList ``layers``: saved agents' keys are
    ``layers.0.weight``, ``layers.1.weight``, ...
    """

    def __init__(self, n_in: int, hidden_sizes: Sequence[int], n_out: int, activation: str = "tanh",
                 out_gain: float | None = 1.0) -> None:
        super().__init__()
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be one of ['relu', 'tanh'], got {activation!r}")
        _, self.activation, self._numpy_activation = ACTIVATIONS[activation]
        self.layers = nn.ModuleList(mlp([n_in, *hidden_sizes, n_out], activation, orthogonal_gain=out_gain).linears)

    def forward(self, x: Tensor) -> Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)

    def numpy_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """This MLP as a numpy function over views of its weights, for inference at one env step."""
        return numpy_layers(self.layers, self._numpy_activation)
