"""Dreamer's actor-critic: learned purely from imagined rollouts of any world model.

From a batch of posterior states (filtered from real data), the actor imagines ``horizon`` steps;
λ-returns mix the imagined rewards with a critic's values:

    R_t = r_{t+1} + γ c_{t+1} ((1 - λ) v(s_{t+1}) + λ R_{t+1}),     R_H = v(s_H)

where v is by default the slowly updated critic (Dreamer V2's target network) and, with
``return_critic="fast"``, the critic itself (DreamerV3, whose slow copy only regularises).

- continuous actions: the actor maximises R_t directly, its gradient flowing back through the
  world model's dynamics, rewards and values (reparameterised samples, Dreamer V1/V2);
- discrete actions, or continuous ones in a world model whose ``imagine`` passes no gradient (a
  dynamics ensemble): REINFORCE, log π(a_t | s_t) times the advantage R_t - v(s_t), as DreamerV3
  does for every action space;
- returns are divided by max(1, P95 - P5) of recent returns (DreamerV3's return normalisation),
  so one entropy scale suits tasks of any reward scale;
- the critic regresses R_t; its slow copy is an exponential moving average of it. By default
  (DreamerV3) it predicts a two-hot distribution over symlog bins, whose gradient does not grow
  with the return's scale, and is also pulled towards the slow critic's values, which keeps it
  from chasing its own moving targets. ``critic="mse"`` is Dreamer V1/V2's plain
  regression.

Steps are weighted by the probability that the dream is still running (the product of γ c).
The continue probabilities c carry no gradient to the actor (DreamerV3 uses the head's mode).
The world model's weights are frozen while the actor-critic learns; gradients only pass through.
"""

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from worldkit.checkpoints import checkpointable
from worldkit.dream.imagine import imagine
from worldkit.models.heads import ScalarHead, mlp
from worldkit.models.protocol import State, WorldModel, detach_state, select_state
from worldkit.spaces import action_size, space_from_dict, space_to_dict, to_bounds


@dataclass
class DreamerConfig:
    """The actor-critic's settings (each field is a recipe flag): DreamerV3's, except two kept from
    Dreamer V1 and V2: γ = 0.99 (V3: 0.997) and λ-returns from the slow critic (V3: the fast one)."""

    horizon: int = 15
    """imagined steps per update"""
    gamma: float = 0.99
    lam: float = 0.95
    """λ of the λ-returns"""
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    entropy: float = 3e-4
    """weight of the actor's entropy bonus (returns are normalised, so it is scale-free)"""
    slow_critic_decay: float = 0.98
    """share of itself the slow critic keeps at each update (the rest is the critic's)"""
    return_decay: float = 0.99
    """decay of the moving P5 and P95 of returns"""
    grad_clip: float = 100.0
    critic: str = "twohot"
    """the critic's head: "twohot" (symlog bins, DreamerV3) or "mse" (Dreamer V1/V2)"""
    slow_regulariser: float = 1.0
    """weight of the critic's loss towards the slow critic's values (DreamerV3 uses 1)"""
    return_critic: str = "slow"
    """whose values bootstrap the λ-returns: "slow" (the moving average, Dreamer V2) or "fast" (DreamerV3)"""
    hidden: int = 256
    layers: int = 2
    temperature: float = 1.0
    """the world model's sampling temperature while imagining"""
    starts: int | None = None
    """imagine from this many of a batch's posterior states, drawn at random (None: all of them, as
    DreamerV3 does); neighbouring states of a sequence are much alike, and the actor-critic's cost
    grows with the number of starts"""

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("horizon, hidden and layers must be positive")
        if self.starts is not None and self.starts < 1:
            raise ValueError(f"starts must be positive (or None for all), got {self.starts}")
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"gamma must be in (0, 1] and lam in [0, 1], got {self.gamma} and {self.lam}")
        if self.critic not in ("twohot", "mse"):
            raise ValueError(f"critic must be 'twohot' or 'mse', got {self.critic!r}")
        if self.return_critic not in ("slow", "fast"):
            raise ValueError(f"return_critic must be 'slow' or 'fast', got {self.return_critic!r}")
        if self.slow_regulariser < 0:
            raise ValueError(f"slow_regulariser must be >= 0, got {self.slow_regulariser}")


@checkpointable
class DreamerActorCritic(nn.Module):
    """Actor, critic and slow critic (MLPs on a world model's features), with return statistics.

    Box actions: a Gaussian with tanh-bounded mean and std in [0.1, 1], its samples clipped
    (straight-through) into [-1, 1] and scaled to the Box's bounds. Discrete actions: a
    categorical mixed with 1% uniform.
    """

    def __init__(self, feature_dim: int, action_space: "gym.Space | dict[str, Any]", hidden: int = 256,
                 layers: int = 2, critic: str = "twohot"):
        super().__init__()
        action_space = action_space if isinstance(action_space, dict) else space_to_dict(action_space)
        self.hparams = {"feature_dim": feature_dim, "action_space": action_space, "hidden": hidden, "layers": layers,
                        "critic": critic}
        self.action_space = space_from_dict(action_space)
        self.continuous = isinstance(self.action_space, gym.spaces.Box)
        self.action_dim = action_size(self.action_space, "the actor")
        self.actor = mlp(feature_dim, hidden, layers, 2 * self.action_dim if self.continuous else self.action_dim)
        self.critic = ScalarHead(feature_dim, hidden, layers, critic)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.register_buffer("return_low", torch.zeros(()))
        self.register_buffer("return_high", torch.zeros(()))

    def distribution(self, features: torch.Tensor) -> torch.distributions.Distribution:
        out = self.actor(features).float()
        if self.continuous:
            mean, std = out.chunk(2, -1)
            std = 0.9 * torch.sigmoid(std + 2.0) + 0.1
            return torch.distributions.Independent(torch.distributions.Normal(torch.tanh(mean), std), 1)
        probs = 0.99 * out.softmax(-1) + 0.01 / self.action_dim
        return torch.distributions.Categorical(probs=probs)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Box samples clipped into [-1, 1] (gradients pass as if unclipped), scaled to the bounds."""
        if not self.continuous:
            return action
        return to_bounds(action + (action.clamp(-1, 1) - action).detach(), self.action_space)

    @torch.no_grad()
    def act(self, features: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Env-ready actions for features (B, feature_dim): sampled, or the mode."""
        dist = self.distribution(features)
        if deterministic:
            action = dist.base_dist.mean if self.continuous else dist.probs.argmax(-1)
        else:
            action = dist.sample()
        return self.to_env(action)


class DreamerLearner:
    """Trains a :class:`DreamerActorCritic` in any world model's imagination.

    Args:
        world_model: the model to dream in (frozen here).
        config: the settings.
        actor_critic: continue training this one instead of building a fresh one.
    """

    def __init__(self, world_model: WorldModel, config: DreamerConfig,
                 actor_critic: DreamerActorCritic | None = None):
        self.world_model, self.config = world_model, config
        if actor_critic is None:
            actor_critic = DreamerActorCritic(world_model.feature_dim, world_model.action_space,
                                              config.hidden, config.layers, config.critic)
        elif space_to_dict(actor_critic.action_space) != space_to_dict(world_model.action_space) \
                or actor_critic.hparams["feature_dim"] != world_model.feature_dim:
            raise ValueError(f"the actor-critic was built for {actor_critic.hparams['feature_dim']} features and "
                             f"{actor_critic.action_space}, the world model has {world_model.feature_dim} and "
                             f"{world_model.action_space}")
        elif actor_critic.hparams["critic"] != config.critic:
            raise ValueError(f"the actor-critic's critic is {actor_critic.hparams['critic']!r}, the config asks for "
                             f"{config.critic!r}")
        device = world_model.features(world_model.initial_state(1)).device
        self.actor_critic = actor_critic = actor_critic.to(device)
        self.through_dynamics = actor_critic.continuous and passes_gradient(world_model)
        """the actor's gradient flows back through the world model's steps; else REINFORCE"""
        self.average: "Callable[[torch.Tensor], torch.Tensor] | None" = None
        """averages a tensor over data-parallel processes (gradients, return statistics); None alone"""
        self.actor_optimizer = torch.optim.Adam(actor_critic.actor.parameters(), config.actor_lr, eps=1e-5)
        self.critic_optimizer = torch.optim.Adam(actor_critic.critic.parameters(), config.critic_lr, eps=1e-5)

    def train_step(self, start_states: State) -> dict[str, float]:
        """One actor and one critic update from imagined rollouts of a batch of start states."""
        cfg, ac = self.config, self.actor_critic
        start = detach_state(start_states)  # imagination starts here; no gradient goes further back
        if cfg.starts is not None and len(start[0]) > cfg.starts:
            start = select_state(start, torch.randperm(len(start[0]), device=start[0].device)[:cfg.starts])
        with frozen(self.world_model), torch.set_grad_enabled(True):
            features, rewards, continues, log_probs, entropies = self._imagine(start)
            bootstrap = ac.critic if cfg.return_critic == "fast" else ac.slow_critic
            with frozen(bootstrap):  # the actor's gradient reaches the features through it, not its weights
                values = bootstrap(features)  # (H+1, B)
            with torch.no_grad():  # the regulariser's targets; no graph needed
                slow_values = values if bootstrap is ac.slow_critic else ac.slow_critic(features)
            returns = lambda_returns(rewards, continues, values, cfg.gamma, cfg.lam)  # (H, B)
            weights = torch.cat([torch.ones_like(continues[:1]), torch.cumprod(cfg.gamma * continues, 0)[:-1]]).detach()
            scale = self._return_scale(returns.detach())
            if self.through_dynamics:
                objective = returns / scale
            else:
                objective = log_probs * ((returns - values[:-1]) / scale).detach()
            actor_loss = -(weights * (objective + cfg.entropy * entropies)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            if self.average is not None:
                average_gradients(ac.actor.parameters(), self.average)
            nn.utils.clip_grad_norm_(ac.actor.parameters(), cfg.grad_clip)
            self.actor_optimizer.step()

            critic_loss = ac.critic.loss(features[:-1].detach(), returns.detach(), pull_towards=slow_values[:-1].detach(),
                                         pull=cfg.slow_regulariser)
            critic_loss = (weights * critic_loss).mean()
            self.critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            if self.average is not None:
                average_gradients(ac.critic.parameters(), self.average)
            nn.utils.clip_grad_norm_(ac.critic.parameters(), cfg.grad_clip)
            self.critic_optimizer.step()
        with torch.no_grad():
            for slow, fast in zip(ac.slow_critic.parameters(), ac.critic.parameters()):
                slow.lerp_(fast, 1 - cfg.slow_critic_decay)
        return {"actor_loss": actor_loss.item(), "critic_loss": critic_loss.item(),
                "imagined_return": returns[0].mean().item(), "imagined_reward": rewards.mean().item(),
                "entropy": entropies.mean().item(), "return_scale": float(scale)}

    def _imagine(self, state: State) -> tuple[torch.Tensor, ...]:
        """Features (H+1, B, F), rewards, continues, log-probs and entropies (H, B). Through the
        dynamics, actions are reparameterised samples whose gradient flows back through the world
        model's steps; with REINFORCE they are plain samples, so the steps need no graph."""
        ac, through = self.actor_critic, self.through_dynamics

        def act(features: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            dist = ac.distribution(features.detach())
            action = dist.rsample() if through else dist.sample()
            return ac.to_env(action), {"log_prob": dist.log_prob(action), "entropy": dist.entropy()}

        dream = imagine(self.world_model, state, act, self.config.horizon, temperature=self.config.temperature,
                        differentiable=through, keep_features=True)
        return dream.features, dream.rewards, dream.continues, dream.extras["log_prob"], dream.extras["entropy"]

    def _return_scale(self, returns: torch.Tensor) -> torch.Tensor:
        ac, decay = self.actor_critic, self.config.return_decay
        quantiles = torch.quantile(returns.flatten(), torch.tensor([0.05, 0.95], device=returns.device))
        low, high = quantiles if self.average is None else self.average(quantiles)
        ac.return_low.lerp_(low, 1 - decay)
        ac.return_high.lerp_(high, 1 - decay)
        return torch.clamp(ac.return_high - ac.return_low, min=1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"actor_critic": self.actor_critic.state_dict(), "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_critic.load_state_dict(state["actor_critic"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])


def average_gradients(parameters: "Iterator[nn.Parameter]", average: "Callable[[torch.Tensor], torch.Tensor]") -> None:
    """Replace each gradient by its mean over data-parallel processes, in one collective call."""
    parameters = [p for p in parameters if p.requires_grad]
    for p in parameters:  # a parameter without a gradient here may have one in another process
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = average(torch.cat([p.grad.reshape(-1) for p in parameters]))
    for p, mean in zip(parameters, flat.split([p.numel() for p in parameters])):
        p.grad.copy_(mean.view_as(p.grad))


def lambda_returns(rewards: torch.Tensor, continues: torch.Tensor, values: torch.Tensor, gamma: float,
                   lam: float) -> torch.Tensor:
    """λ-returns (H, B) from rewards and continues (H, B) and values (H+1, B), bootstrapped from the last."""
    returns, last = [], values[-1]
    for t in reversed(range(len(rewards))):
        last = rewards[t] + gamma * continues[t] * ((1 - lam) * values[t + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


def train_in_dream(world_model: WorldModel, start_states: State, config: DreamerConfig, steps: int, *,
                   batch_size: int = 256, seed: int = 0,
                   actor_critic: DreamerActorCritic | None = None) -> tuple[DreamerActorCritic, list[dict[str, float]]]:
    """``steps`` updates, each from ``batch_size`` states drawn from the pool ``start_states``."""
    learner = DreamerLearner(world_model, config, actor_critic)
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(steps):
        index = torch.as_tensor(rng.integers(len(start_states[0]), size=batch_size), device=start_states[0].device)
        history.append(learner.train_step(select_state(start_states, index)))
    return learner.actor_critic, history


def passes_gradient(world_model: WorldModel) -> bool:
    """Whether a dreamed step's reward carries a gradient back to its Box action (an RSSM's does;
    a dynamics ensemble, which imagines without a graph, does not)."""
    state = world_model.initial_state(1)
    device = world_model.features(state).device
    action = torch.zeros((1, *world_model.action_space.shape), device=device, requires_grad=True)
    with frozen(world_model), torch.enable_grad():
        _, reward, _ = world_model.imagine(state, action)
    return reward.requires_grad


@contextlib.contextmanager
def frozen(module: Any) -> Iterator[None]:
    """No gradient for the module's parameters (gradients still pass through it) while inside."""
    parameters = [p for p in module.parameters() if p.requires_grad] if isinstance(module, nn.Module) else []
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


@checkpointable
class DreamerAgent(nn.Module):
    """A world model and the actor-critic trained in its dream, saved and loaded as one agent.

    ``from_pretrained(folder)`` gives it back ready to act: :meth:`policy` filters real
    observations through the world model and acts on its features, as in training.

    Args:
        world_model: :func:`~worldkit.checkpoints.describe` of the world model (any registered class).
        actor_critic: the :class:`DreamerActorCritic`'s hparams.
        action_repeat: env steps each of its actions is held for, as in training (dm-control: 2).
    """

    def __init__(self, world_model: dict[str, Any], actor_critic: dict[str, Any], action_repeat: int = 1):
        super().__init__()
        from worldkit.checkpoints import build

        self.hparams = {"world_model": world_model, "actor_critic": actor_critic, "action_repeat": action_repeat}
        self.world_model = build(world_model)
        self.actor_critic = DreamerActorCritic(**actor_critic)
        self.action_repeat = action_repeat

    @classmethod
    def of(cls, world_model: WorldModel, actor_critic: DreamerActorCritic, action_repeat: int = 1) -> "DreamerAgent":
        """An agent holding copies of these two (their weights, on the CPU)."""
        from worldkit.checkpoints import describe

        agent = cls(describe(world_model), dict(actor_critic.hparams), action_repeat)
        agent.world_model.load_state_dict(world_model.state_dict())
        agent.actor_critic.load_state_dict(actor_critic.state_dict())
        agent.env_spec = getattr(world_model, "env_spec", None)
        return agent.eval()

    @property
    def env_spec(self) -> "str | None":
        return getattr(self.world_model, "env_spec", None)

    @env_spec.setter
    def env_spec(self, value: "str | None") -> None:
        self.world_model.env_spec = value

    @property
    def observation_space(self) -> gym.Space:
        return self.world_model.observation_space

    @property
    def action_space(self) -> gym.Space:
        return self.world_model.action_space

    def policy(self, deterministic: bool = True) -> Any:
        """A policy for :func:`~worldkit.data.driver.drive` (one world-model state per env)."""
        from worldkit.dream.driver import WorldModelPolicy

        return WorldModelPolicy(self.world_model, lambda features: self.actor_critic.act(features, deterministic))

    def evaluate(self, env: "gym.Env | str | None" = None, episodes: int = 10, *, seed: int = 0,
                 deterministic: bool = True, on_episode: Any = None) -> dict[str, Any]:
        """Real episodes in ``env`` (default: the env it was trained on; an id is made as in training,
        with the agent's action repeat and frame size); the result schema of
        :func:`~worldkit.data.driver.summarize`."""
        from worldkit.dream.driver import evaluate_in_real_env

        if env is None:
            if self.env_spec is None:
                raise ValueError("this agent does not record its env: pass env=")
            env = self.env_spec
        owned = isinstance(env, str)
        if owned:
            env = self.make_env(env)
        try:
            return evaluate_in_real_env(self.world_model, lambda f: self.actor_critic.act(f, deterministic), env,
                                        episodes, seed=seed, on_episode=on_episode)
        finally:
            if owned:
                env.close()

    def make_env(self, env_id: "str | None" = None, **kwargs: Any) -> gym.Env:
        """The env ``env_id`` (default: the one it was trained on) as the agent saw it in training."""
        from worldkit.envs import make_env, parse_spec

        spec = parse_spec(env_id or self.env_spec)
        shape = getattr(self.observation_space, "shape", None)
        if spec.obs == "pixels" and shape is not None and len(shape) == 3:
            kwargs.setdefault("size", tuple(shape[:2]))
        return make_env(spec, action_repeat=self.action_repeat, **kwargs)
