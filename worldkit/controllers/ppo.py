"""Proximal Policy Optimisation: the one learner every PPO variant in worldkit runs.

The algorithm is CleanRL's ``ppo_continuous_action`` (clipped surrogate, clipped value loss,
GAE, per-minibatch advantage normalisation, linear learning-rate annealing) written as a library:

- observation and reward normalisation live in the agent as buffers, so checkpoints carry them;
- an episode cut by a time limit is bootstrapped with the value of its true final observation,
  an episode that terminated is not;
- :class:`PPOHook` lets world-model-assisted PPO, PPO+ICM, PPO in a dream and adaptive-imagination
  PPO add features, intrinsic rewards, auxiliary losses and extra weighted (e.g. imagined)
  samples without copying this loop.

It runs on the CPU: with 64-unit MLPs and one env, Python and per-op overhead, not arithmetic,
set the speed, so the rollout keeps tensors preallocated and shares memory with numpy.
"""

import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from worldkit.controllers.policy import PPOAgent
from worldkit.controllers.rollout import PPOHook, Rollout, WeightedSamples, compute_gae
from worldkit.data.driver import drive, summarize
from worldkit.envs import EnvSpec, make_vector_env
from worldkit.normalize import EPSILON

__all__ = ["PPO", "PPO_PRESETS", "PPOConfig", "evaluate", "ppo_preset_for"]

@dataclass
class PPOConfig:
    """PPO hyperparameters; the defaults are CleanRL's for MuJoCo (each field is a recipe flag)."""

    total_steps: int = 1_000_000
    """env steps to train for (summed over the vectorised envs)"""
    num_envs: int = 1
    """parallel envs; must equal the vector env's num_envs"""
    num_steps: int = 2048
    """steps per env in each rollout"""
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 32
    update_epochs: int = 10
    clip_coef: float = 0.2
    """policy ratio clip, also the value clip"""
    clip_value_loss: bool = True
    norm_adv: bool = True
    """normalise advantages within each minibatch"""
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    """stop the update's epochs early once an epoch's mean approximate KL exceeds this"""
    normalize_obs: bool = True
    normalize_reward: bool = True
    """scale rewards by the std of the discounted return (CleanRL/SB3 style)"""
    obs_clip: float = 10.0
    reward_clip: float = 10.0
    hidden_sizes: tuple[int, ...] = (64, 64)
    """MLP widths, for the actor and the critic each"""
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float = 0.0
    """initial log-std of the Gaussian policy (Box actions)"""
    ortho_init: bool = True
    """CleanRL's orthogonal initialisation; PyTorch's default if False"""
    seed: int = 1
    torch_threads: int | None = 1
    """torch threads while learn() runs (restored after); 1 is fastest for small MLPs, None leaves it alone"""
    compile: bool | None = None
    """torch.compile each minibatch's loss (PPO's and its hooks'): seconds of compiling, then faster
    updates. None: when total_steps is 200,000 or more and a C++ compiler is installed"""

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        for name in ("total_steps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
            _require(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        _require(
            self.batch_size % self.num_minibatches == 0,
            f"num_steps * num_envs ({self.num_steps} * {self.num_envs} = {self.batch_size}) must be "
            f"divisible by num_minibatches ({self.num_minibatches})",
        )
        _require(
            not self.norm_adv or self.minibatch_size >= 2,
            f"norm_adv needs minibatches of at least 2 samples, got {self.minibatch_size}",
        )
        _require(
            self.total_steps >= self.batch_size,
            f"total_steps ({self.total_steps}) is less than one rollout "
            f"(num_steps * num_envs = {self.batch_size})",
        )
        _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _require(0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        for name in ("learning_rate", "clip_coef", "max_grad_norm", "obs_clip", "reward_clip"):
            _require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            _require(getattr(self, name) >= 0, f"{name} must be non-negative, got {getattr(self, name)}")
        _require(
            self.target_kl is None or self.target_kl > 0, f"target_kl must be positive or None, got {self.target_kl}"
        )
        _require(
            len(self.hidden_sizes) > 0 and all(size >= 1 for size in self.hidden_sizes),
            f"hidden_sizes must be one or more positive widths, got {self.hidden_sizes}",
        )
        _require(self.activation in ("tanh", "relu"), f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        _require(
            self.torch_threads is None or self.torch_threads >= 1,
            f"torch_threads must be at least 1 or None, got {self.torch_threads}",
        )

    @classmethod
    def preset(cls, name: str) -> "PPOConfig":
        """Named hyperparameters: ``cleanrl`` (the defaults, CleanRL's for MuJoCo) or
        ``rl_zoo_halfcheetah`` (RL Baselines3 Zoo's tuned HalfCheetah settings: short rollouts,
        many small-batch epochs, a low constant learning rate, 256-256 ReLU nets, a narrow first policy)."""
        if name not in PPO_PRESETS:
            raise ValueError(f"unknown PPO preset {name!r}; known: {sorted(PPO_PRESETS)}")
        return cls(**PPO_PRESETS[name])

    @property
    def batch_size(self) -> int:
        """Transitions per rollout."""
        return self.num_steps * self.num_envs

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Rollout-and-update iterations in :meth:`PPO.learn`."""
        return self.total_steps // self.batch_size


COMPILE_FROM_STEPS = 200_000
"""total steps from which PPO compiles its loss by default: compiling pays for itself well before"""

PPO_PRESETS: dict[str, dict[str, Any]] = {
    "cleanrl": {},
    "rl_zoo_halfcheetah": dict(
        num_steps=512, num_minibatches=8, update_epochs=20, learning_rate=2.0633e-5, anneal_lr=False, gamma=0.98,
        gae_lambda=0.92, clip_coef=0.1, clip_value_loss=False, ent_coef=0.000401762, vf_coef=0.58096,
        max_grad_norm=0.8, hidden_sizes=(256, 256), activation="relu", log_std_init=-2.0, ortho_init=False,
    ),
}
"""overrides of PPOConfig's defaults, by preset name"""

_PRESET_BY_ENV = {"HalfCheetah": "rl_zoo_halfcheetah"}


def ppo_preset_for(env: str) -> str:
    """The PPO preset that is strong on ``env`` (an id such as ``HalfCheetah-v4`` or
    ``gym:HalfCheetah-v4``): RL Zoo's tuned settings on HalfCheetah, where CleanRL's defaults
    reach about a third of its return at 1M steps; CleanRL's everywhere else."""
    name = env.split(":")[-1].split("-")[0]
    return _PRESET_BY_ENV.get(name, "cleanrl")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# ------------------------------------------------------------------------------------- learner


class PPO:
    """Trains a :class:`PPOAgent` on a gymnasium vector env.

    Args:
        config: Hyperparameters.
        envs: A ``gymnasium.vector.VectorEnv`` with SAME_STEP autoreset and ``config.num_envs``
            envs, such as ``worldkit.envs.make_vector_env(spec, num_envs)``.
        hooks: Extensions (:class:`PPOHook`), called in order.
        agent: Continue training this agent instead of building a fresh one from the env's spaces.

    Example:
        ```python
        from worldkit.controllers import PPO, PPOConfig
        from worldkit.envs import make_vector_env

        ppo = PPO(PPOConfig(total_steps=100_000), make_vector_env("Walker2d-v4", 1))
        history = ppo.learn()
        print(ppo.evaluate("Walker2d-v4", episodes=10)["mean_return"])
        ```
    """

    def __init__(
        self,
        config: PPOConfig,
        envs: gym.vector.VectorEnv,
        hooks: Iterable[PPOHook] = (),
        agent: PPOAgent | None = None,
    ) -> None:
        _check_vector_env(envs)
        if envs.num_envs != config.num_envs:
            raise ValueError(f"config.num_envs is {config.num_envs} but the vector env has {envs.num_envs} envs")
        self.config, self.envs, self.hooks = config, envs, tuple(hooks)
        features = self._feature_module()
        if agent is None:
            with torch.random.fork_rng(devices=[]):  # seed the initial weights, not the caller's RNG
                torch.manual_seed(config.seed)
                agent = PPOAgent(
                    envs.single_observation_space,
                    envs.single_action_space,
                    config.hidden_sizes,
                    config.normalize_obs,
                    config.normalize_reward,
                    config.obs_clip,
                    features,
                    config.activation,
                    config.log_std_init,
                    config.ortho_init,
                )
        else:
            agent.check_spaces(envs.single_observation_space, envs.single_action_space)
            if features is not None and agent.features is not features:
                raise ValueError("a hook provides a feature module, but the given agent was built without it")
            built_with = (agent.obs_rms is not None, agent.return_rms is not None)
            if (config.normalize_obs, config.normalize_reward) != built_with:
                raise ValueError(
                    f"config.normalize_obs/normalize_reward are {config.normalize_obs}/{config.normalize_reward}, "
                    f"but the given agent was built with {built_with[0]}/{built_with[1]}"
                )
        self.agent = agent

        parameters = {id(p): p for p in agent.parameters()}
        for hook in self.hooks:
            if isinstance(hook, nn.Module):
                parameters.update({id(p): p for p in hook.parameters()})
        self._parameters = list(parameters.values())
        apart = [list({id(p): p for p in hook.parameters()}.values()) for hook in self.hooks
                 if hook.clip_apart and isinstance(hook, nn.Module)]
        apart_ids = {id(p) for group in apart for p in group}
        # each group's gradient norm is clipped on its own (one group, all parameters, unless a hook asks)
        self._clip_groups = [[p for p in self._parameters if id(p) not in apart_ids], *apart]
        # fused: one kernel for every parameter instead of a Python loop over them.
        self.optimizer = torch.optim.Adam(self._parameters, lr=config.learning_rate, eps=1e-5, fused=True)
        compile_loss = config.compile
        if compile_loss is None:
            compile_loss = config.total_steps >= COMPILE_FROM_STEPS and _cpp_compiler() is not None
        elif compile_loss and _cpp_compiler() is None:
            raise ValueError("compile=True needs a C++ compiler (g++ or clang++) for torch.compile; install one, "
                             "or set compile=False")
        # many small kernels per minibatch, fused; updates with extra samples (other shapes) stay eager
        self._real_loss = torch.compile(self._loss) if compile_loss else self._loss
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rollout = Rollout.empty(
            config.num_steps, config.num_envs, envs.single_observation_space.shape, agent.action_space
        )

        self.global_step = 0
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.episode_lengths: deque[int] = deque(maxlen=100)
        self._obs: np.ndarray | None = None  # normalised observations of the running episodes
        self._discounted_returns = np.zeros(config.num_envs)  # for reward scaling
        self._episode_return = np.zeros(config.num_envs)
        self._episode_length = np.zeros(config.num_envs, dtype=np.int64)

    def _feature_module(self) -> nn.Module | None:
        modules = [(hook.name, module) for hook in self.hooks if (module := hook.feature_module()) is not None]
        if len(modules) > 1:
            raise ValueError(f"at most one hook may provide a feature module; {[name for name, _ in modules]} do")
        return modules[0][1] if modules else None

    # ---------------------------------------------------------------------------- training

    def learn(
        self, progress: bool = True, callback: Callable[[dict[str, float]], bool | None] | None = None
    ) -> list[dict[str, float]]:
        """Train until ``global_step`` reaches ``config.total_steps``; return each update's metrics.

        After :meth:`load_state_dict`, this resumes where the saved run stopped (the learning-rate
        schedule included); the envs start fresh episodes.

        Args:
            progress: Show a tqdm progress bar.
            callback: Called with each update's metrics (also returned); returning False stops
                training early.

        Metrics: ``global_step``, ``sps`` (env steps per second since this call began),
        ``episodic_return`` / ``episodic_length`` (means over the last 100 finished episodes,
        NaN before the first), ``learning_rate``, ``policy_loss``, ``value_loss``, ``entropy``,
        ``approx_kl``, ``old_approx_kl``, ``clipfrac`` (means over the update's minibatches),
        ``explained_variance`` (of the real samples), ``epochs``, ``rollout_time``, ``update_time``,
        the hooks' ``intrinsic_reward/<name>`` and ``aux_loss/<name>``, and, when a hook supplied
        :meth:`PPOHook.extra_samples`, ``extra_samples`` (how many) and ``extra_weight_mean``.
        """
        threads = torch.get_num_threads()
        if self.config.torch_threads is not None:
            torch.set_num_threads(self.config.torch_threads)
        try:
            return self._learn(progress, callback)
        finally:
            torch.set_num_threads(threads)

    def _learn(
        self, progress: bool, callback: Callable[[dict[str, float]], bool | None] | None
    ) -> list[dict[str, float]]:
        cfg = self.config
        if self._obs is None:
            # Offset by the step count, so a resumed run does not replay the first run's resets.
            obs, _ = self.envs.reset(seed=cfg.seed + self.global_step)
            self._obs = self._observe(obs)
        history: list[dict[str, float]] = []
        start_time, start_step = time.perf_counter(), self.global_step
        total = cfg.num_updates * cfg.batch_size
        with tqdm(total=total, initial=min(self.global_step, total), unit="step", disable=not progress) as bar:
            for update in range(self.global_step // cfg.batch_size, cfg.num_updates):
                frac = 1.0 - update / cfg.num_updates if cfg.anneal_lr else 1.0
                for group in self.optimizer.param_groups:
                    group["lr"] = frac * cfg.learning_rate

                rollout_start = time.perf_counter()
                self._collect()
                metrics = self._finish_rollout()
                for hook in self.hooks:
                    hook.on_rollout_end(self.rollout)
                extras = self._extra_samples()
                update_start = time.perf_counter()
                metrics.update(self._update(extras))
                now = time.perf_counter()
                metrics.update(
                    global_step=self.global_step,
                    sps=(self.global_step - start_step) / (now - start_time),
                    learning_rate=frac * cfg.learning_rate,
                    episodic_return=float(np.mean(self.episode_returns)) if self.episode_returns else math.nan,
                    episodic_length=float(np.mean(self.episode_lengths)) if self.episode_lengths else math.nan,
                    rollout_time=update_start - rollout_start,
                    update_time=now - update_start,
                )
                for hook in self.hooks:
                    hook.on_update_end(metrics)
                history.append(metrics)
                bar.update(cfg.batch_size)
                bar.set_postfix(episodic_return=f"{metrics['episodic_return']:.1f}", sps=f"{metrics['sps']:.0f}")
                if callback is not None and callback(metrics) is False:
                    break
        return history

    def state_dict(self) -> dict[str, Any]:
        """What resuming training needs, as tensors and plain values (``torch.load(weights_only=True)`` reads it)."""
        return {
            "agent": self.agent.state_dict(),
            "hooks": [hook.state_dict() if isinstance(hook, nn.Module) else {} for hook in self.hooks],
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "global_step": self.global_step,
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same config, envs and hooks); the next :meth:`learn` resumes."""
        self.agent.load_state_dict(state["agent"])
        for hook, hook_state in zip(self.hooks, state["hooks"], strict=True):
            if isinstance(hook, nn.Module):
                hook.load_state_dict(hook_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.global_step = int(state["global_step"])
        self.episode_returns.clear()
        self.episode_returns.extend(state["episode_returns"])
        self.episode_lengths.clear()
        self.episode_lengths.extend(state["episode_lengths"])
        self._obs = None  # episodes in flight were not saved: start fresh ones
        self._discounted_returns[:] = 0.0
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0

    @torch.inference_mode()  # no tensor made here outlives the rollout: data leaves through numpy
    def _collect(self) -> None:
        """Fill ``self.rollout`` with ``num_steps`` steps of every env.

        Only what must happen step by step happens here; values, log-probs and reward scaling
        are computed for the whole rollout afterwards, in a few batched operations.
        """
        cfg, agent, rollout = self.config, self.agent, self.rollout
        # numpy views of the rollout's tensors: writing an env-sized row costs far less this way.
        obs, next_obs, actions = rollout.obs.numpy(), rollout.next_obs.numpy(), rollout.actions.numpy()
        rewards, terminated, dones = rollout.rewards.numpy(), rollout.terminated.numpy(), rollout.dones.numpy()
        noise = agent.noise((cfg.num_steps, cfg.num_envs), self.generator).numpy()
        act = agent.rollout_actor()
        for step in range(cfg.num_steps):
            obs[step] = self._obs
            actions[step], env_action = act(self._obs, noise[step])
            raw_obs, rewards[step], terminated[step], truncated, info = self.envs.step(env_action)
            done = np.logical_or(terminated[step], truncated, out=dones[step])
            self._obs = next_obs[step] = self._observe(raw_obs)
            if done.any():  # the returned obs already starts the next episode; keep the true last one
                ended = info["_final_obs"]
                next_obs[step, ended] = agent.normalize(np.stack(info["final_obs"][ended]).astype(np.float32))
        self.global_step += cfg.batch_size
        self._record_episodes(rewards, dones)

    def _observe(self, raw_obs: np.ndarray) -> np.ndarray:
        """Update the observation statistics with fresh observations and normalise them."""
        obs = np.asarray(raw_obs, dtype=np.float32)
        if self.agent.obs_rms is None:
            return obs
        return self.agent.obs_rms.update_normalize(obs, self.agent.obs_clip)

    def _record_episodes(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Add the rollout's finished episodes' (unscaled) returns and lengths to the last-100 window."""
        starts = np.zeros(self.config.num_envs, dtype=np.int64)  # first step of each env's running episode
        for step, env in zip(*np.nonzero(dones)):  # in step order, so the window keeps the latest
            episode = rewards[starts[env] : step + 1, env]
            self.episode_returns.append(float(self._episode_return[env] + episode.sum(dtype=np.float64)))
            self.episode_lengths.append(int(self._episode_length[env] + len(episode)))
            self._episode_return[env], self._episode_length[env] = 0.0, 0
            starts[env] = step + 1
        for env, start in enumerate(starts):
            self._episode_return[env] += rewards[start:, env].sum(dtype=np.float64)
            self._episode_length[env] += len(rewards) - start

    def _scale_rewards(self) -> None:
        """Divide each reward by the std of the discounted return as it stood at that step.

        This is SB3's and CleanRL's reward scaling (the discounted return restarts with each
        episode), computed for the whole rollout at once.
        """
        cfg, rollout = self.config, self.rollout
        rewards, dones = rollout.rewards.numpy(), rollout.dones.numpy()
        returns = np.empty_like(rewards, dtype=np.float64)
        running, continues = self._discounted_returns, 1.0 - dones
        for step in range(cfg.num_steps):
            returns[step] = running = running * cfg.gamma + rewards[step]
            running = running * continues[step]
        self._discounted_returns = running
        variances = self.agent.return_rms.update_each(returns)
        rewards[...] = np.clip(rewards / np.sqrt(variances[:, None] + EPSILON), -cfg.reward_clip, cfg.reward_clip)

    @torch.no_grad()
    def _finish_rollout(self) -> dict[str, float]:
        """Values and log-probs in one batched pass, reward scaling, intrinsic rewards, then GAE."""
        cfg, agent, rollout = self.config, self.agent, self.rollout
        steps = (cfg.num_steps, cfg.num_envs)
        flat = rollout.flatten()
        policy_out, values = agent(flat.obs)
        logprobs, _ = agent.log_prob_entropy(policy_out, flat.actions)
        rollout.values.copy_(values.view(steps))
        rollout.logprobs.copy_(logprobs.view(steps))
        next_values = agent.value(flat.next_obs).view(steps) * (1.0 - rollout.terminated)

        if agent.return_rms is not None:
            self._scale_rewards()
        metrics = {}
        for hook in self.hooks:
            bonus = hook.intrinsic_reward(rollout.obs, rollout.actions, rollout.next_obs, rollout.dones)
            if bonus is not None:
                rollout.rewards += bonus
                metrics[f"intrinsic_reward/{hook.name}"] = bonus.mean().item()
        rollout.advantages.copy_(
            compute_gae(rollout.rewards, rollout.values, next_values, rollout.dones, cfg.gamma, cfg.gae_lambda)
        )
        torch.add(rollout.advantages, rollout.values, out=rollout.returns)
        return metrics

    @torch.no_grad()
    def _extra_samples(self) -> list[WeightedSamples]:
        """The hooks' weighted extra samples (e.g. imagined transitions) for this update."""
        extras = []
        for hook in self.hooks:
            extra = hook.extra_samples(self.agent, self.rollout, self.config)
            if extra is not None and len(extra.weights) > 0:
                extras.append(extra)
        return extras

    def _update(self, extras: list[WeightedSamples] = ()) -> dict[str, float]:
        """``update_epochs`` passes over the rollout (and any extra samples) in shuffled minibatches;
        return the update's metrics.

        Without extra samples this is plain PPO, op for op. With them, real and extra samples are
        shuffled together into minibatches of at least ``minibatch_size`` (so there are more of
        them), and each sample's loss terms are weighted (real samples by 1).
        """
        cfg = self.config
        batch = real_batch = self.rollout.flatten()
        weights = None
        total, num_minibatches = cfg.batch_size, cfg.num_minibatches
        if extras:
            batch = Rollout(*(torch.cat([getattr(batch, f.name), *(getattr(e.samples, f.name) for e in extras)])
                              for f in fields(Rollout)))
            weights = torch.cat([torch.ones(cfg.batch_size), *(e.weights.float() for e in extras)])
            total = len(weights)
            num_minibatches = total // cfg.minibatch_size
            sizes = [len(chunk) for chunk in torch.arange(total).tensor_split(num_minibatches)]
        # Logged values stay tensors until the end: a .item() per minibatch would cost real time.
        logged: dict[str, list[Tensor]] = {}
        for epoch in range(cfg.update_epochs):
            for hook in self.hooks:
                hook.on_epoch_start(epoch)
            # Shuffle once per epoch, so that minibatches are views rather than gathers.
            order = torch.randperm(total, generator=self.generator)
            shuffled = batch[order]
            if weights is None:
                minibatches = [(minibatch, None, None) for minibatch in shuffled.split(cfg.minibatch_size)]
            else:
                minibatches = zip(shuffled.split(sizes), weights[order].split(sizes), (order < cfg.batch_size).split(sizes))
            for minibatch, minibatch_weights, real in minibatches:
                if weights is None:
                    loss, logs = self._real_loss(minibatch)
                else:
                    loss, logs = self._loss(minibatch, minibatch_weights, real)
                for parameter in self._parameters:  # what optimizer.zero_grad() does, minus its overhead
                    parameter.grad = None
                loss.backward()
                self._clip_gradients()
                self.optimizer.step()
                for name, value in logs.items():
                    logged.setdefault(name, []).append(value)
            if cfg.target_kl is not None:
                epoch_logratio = torch.cat(logged["logratio"][-num_minibatches:])
                if _kl_stats(epoch_logratio, cfg.clip_coef)["approx_kl"] > cfg.target_kl:
                    break

        metrics = _kl_stats(torch.cat(logged.pop("logratio")), cfg.clip_coef)
        metrics.update({name: torch.stack(values).mean().item() for name, values in logged.items()})
        var_returns = real_batch.returns.var()
        metrics["explained_variance"] = (
            math.nan if var_returns == 0 else float(1 - (real_batch.returns - real_batch.values).var() / var_returns)
        )
        metrics["epochs"] = epoch + 1
        if extras:
            metrics["extra_samples"] = total - cfg.batch_size
            metrics["extra_weight_mean"] = float(weights[cfg.batch_size :].mean())
        return metrics

    def _clip_gradients(self) -> None:
        """Scale each clip group's gradients to a norm of at most ``max_grad_norm``."""
        for group in self._clip_groups:
            _clip_grad_norm_(group, self.config.max_grad_norm)

    def _loss(
        self, minibatch: Rollout, weights: Tensor | None = None, real: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """PPO's loss plus the hooks' auxiliary losses, and what to log of it (detached).

        ``weights`` (one per sample) scale each sample's policy, value and entropy terms before
        they are averaged; ``real`` marks the samples hooks' auxiliary losses may see.
        """
        cfg = self.config
        features = self.agent.features(minibatch.obs)
        policy_out, value = self.agent.heads(features)
        logprob, entropy = self.agent.log_prob_entropy(policy_out, minibatch.actions)
        logratio = logprob - minibatch.logprobs
        ratio = logratio.exp()

        advantages = minibatch.advantages
        if cfg.norm_adv:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        clipped_ratio = ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)
        policy_loss = torch.max(-advantages * ratio, -advantages * clipped_ratio)

        value_loss = (value - minibatch.returns).square()
        if cfg.clip_value_loss:
            clipped_value = minibatch.values + (value - minibatch.values).clamp(-cfg.clip_coef, cfg.clip_coef)
            value_loss = torch.max(value_loss, (clipped_value - minibatch.returns).square())
        bonus_entropy = None
        if weights is not None:  # the logged entropy stays the policy's own, unweighted
            policy_loss, value_loss, bonus_entropy = weights * policy_loss, weights * value_loss, weights * entropy
        policy_loss = policy_loss.mean()
        value_loss = 0.5 * value_loss.mean()

        entropy = entropy.mean()
        loss = policy_loss + cfg.vf_coef * value_loss
        if cfg.ent_coef:  # skipped at 0 (the MuJoCo default): fewer ops in the backward pass
            loss = loss - cfg.ent_coef * (entropy if bonus_entropy is None else bonus_entropy.mean())
        logs = {
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            "logratio": logratio.detach(),
        }
        if real is not None:  # auxiliary losses learn from real samples only
            minibatch, features = (minibatch[real], features[real]) if real.any() else (None, None)
        for hook in self.hooks if minibatch is not None else ():
            aux = hook.auxiliary_loss(minibatch, features)
            if aux is not None:
                loss = loss + aux
                logs[f"aux_loss/{hook.name}"] = aux.detach()
        return loss, logs

    # -------------------------------------------------------------------------- evaluation

    def evaluate(
        self,
        env_or_spec: "str | EnvSpec | gym.Env | gym.vector.VectorEnv",
        episodes: int = 10,
        deterministic: bool = True,
    ) -> dict[str, Any]:
        """:func:`evaluate` this learner's agent, seeded with ``config.seed``."""
        return evaluate(self.agent, env_or_spec, episodes, deterministic=deterministic, seed=self.config.seed)


def evaluate(
    agent: PPOAgent,
    env_or_spec: "str | EnvSpec | gym.Env | gym.vector.VectorEnv",
    episodes: int = 10,
    *,
    deterministic: bool = True,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` whole episodes with frozen normalisation statistics.

    Args:
        agent: The policy.
        env_or_spec: A spec such as ``"Walker2d-v4"`` (one env is built, then closed), a gymnasium
            Env, or a SAME_STEP vector env (episodes are split evenly between its envs, so short
            episodes are not over-counted).
        episodes: How many episodes to average.
        deterministic: Act with the policy's mode (the Gaussian mean, the likeliest action).
        seed: Seeds the env reset and the action sampling.

    Returns:
        :func:`~worldkit.data.driver.summarize`'s schema (``mean_return``, ``std_return``,
        ``mean_length``, the per-episode ``returns`` and ``lengths``, ...).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    owned = isinstance(env_or_spec, (str, EnvSpec))
    if owned:
        envs = make_vector_env(env_or_spec, 1)
    elif isinstance(env_or_spec, gym.Env):
        single = env_or_spec
        envs = gym.vector.SyncVectorEnv([lambda: single], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    else:
        envs = env_or_spec
    _check_vector_env(envs)
    agent.check_spaces(envs.single_observation_space, envs.single_action_space)

    generator = None if seed is None else torch.Generator().manual_seed(seed)
    try:
        rows = drive(envs, lambda obs: agent.act(obs, deterministic, generator), episodes=episodes, seed=seed)
    finally:
        if owned:
            envs.close()
    return summarize(rows)


def _kl_stats(logratio: Tensor, clip_coef: float) -> dict[str, float]:
    """How far the updated policy moved from the one that collected the data (CleanRL's estimators)."""
    ratio = logratio.exp()
    return {
        "old_approx_kl": (-logratio).mean().item(),
        "approx_kl": ((ratio - 1) - logratio).mean().item(),
        "clipfrac": ((ratio - 1).abs() > clip_coef).float().mean().item(),
    }


def _cpp_compiler() -> str | None:
    """The C++ compiler torch.compile would build CPU kernels with, if one is installed."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    return next((path for path in map(shutil.which, names) if path), None)


def _clip_grad_norm_(parameters: list[nn.Parameter], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_``, for a few small tensors: one norm of the concatenated
    gradients instead of one per tensor, which is about four times faster at PPO's sizes."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:  # e.g. a hook's parameters in a minibatch its loss skipped
        return
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for grad in grads:
            grad.mul_(coef)


def _check_vector_env(envs: Any) -> None:
    if not isinstance(envs, gym.vector.VectorEnv):
        raise TypeError(
            f"expected a gymnasium VectorEnv (e.g. worldkit.envs.make_vector_env(spec, n)), got {type(envs).__name__}"
        )
    mode = envs.metadata.get("autoreset_mode")
    if mode != gym.vector.AutoresetMode.SAME_STEP:
        raise ValueError(
            f"the vector env's autoreset mode is {mode}; PPO needs AutoresetMode.SAME_STEP so that "
            "truncated episodes can be bootstrapped from infos['final_obs']"
        )
