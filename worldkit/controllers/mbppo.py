"""Model-based PPO with adaptive imagination and adaptive curiosity (after the adaptive-imagination
write-up), as one PPO hook.

Each PPO iteration, :class:`AdaptiveImagination`:

1. scores the real rollout's transitions with curiosity (RND, or the ensemble's own error) and
   adds ``beta * intrinsic_coef * error / mean real error`` to the rewards before GAE;
2. trains the dynamics ensemble on every real transition so far (held-out ones excepted) and
   the curiosity module on the new real states;
3. measures the model's confidence: ``exp(-held-out loss)`` (the write-up's),
   ``exp(-disagreement_scale * disagreement)`` on the states it is about to dream from, or
   (the default) the lower of the two;
4. dreams ``rollouts_for_confidence(confidence)`` short rollouts from recent real states under
   the current policy, with curiosity on the dreamed steps too, and computes their advantages
   per trajectory;
5. hands them to PPO's update, weighted ``imagination_discount * confidence``;
6. after the update, moves beta by the trend of the extrinsic return (:class:`AdaptiveBeta`).

The hook is not an ``nn.Module``: the ensemble and RND train with their own optimizers on real
data only, never through PPO's loss. :meth:`state_dict` carries what resuming needs.
"""

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import torch
from torch import Tensor

from worldkit.controllers.imagination import (
    imagine_transitions,
    per_trajectory_gae,
    rollouts_for_confidence,
)
from worldkit.controllers.real_transitions import RecordTransitions, TransitionReplay
from worldkit.controllers.rollout import PPOHook, Rollout, WeightedSamples
from worldkit.intrinsic.adaptive_beta import AdaptiveBeta
from worldkit.intrinsic.model_error import ModelErrorCuriosity
from worldkit.intrinsic.rnd import RND
from worldkit.models.ensemble import DynamicsEnsemble
from worldkit.normalize import EPSILON

__all__ = ["AdaptiveImagination", "ImaginationConfig"]

Curiosity = Literal["rnd", "model_error", "none"]
ConfidenceKind = Literal["both", "disagreement", "loss"]


@dataclass
class ImaginationConfig:
    """Settings of adaptive imagination and curiosity (each field is a recipe flag)."""

    ensemble_size: int = 5
    """members of the dynamics ensemble (1: the adaptive-imagination write-up's single model)"""
    model_hidden: tuple[int, ...] = (200, 200)
    """hidden widths of each member"""
    model_lr: float = 1e-3
    model_batch_size: int = 256
    model_train_steps: int = 50
    """ensemble optimiser steps per PPO iteration (each member its own minibatch)"""
    holdout_every: int = 10
    """every n-th real transition is held out of model training, to measure it on"""
    min_rollouts: int = 10
    """imagined rollouts per iteration at low confidence (the adaptive-imagination write-up's 10)"""
    max_rollouts: int = 100
    """imagined rollouts per iteration at full confidence (the adaptive-imagination write-up's 100)"""
    horizon: int = 5
    """steps per imagined rollout (the adaptive-imagination write-up's 5)"""
    temperature: float = 1.0
    """1: each dream step follows a randomly drawn member; 0: the members' mean"""
    confidence: ConfidenceKind = "both"
    """'loss': exp(-held-out loss), the write-up's; 'disagreement': exp(-disagreement_scale * ensemble
    disagreement on the states dreams start from); 'both': the lower of the two"""
    disagreement_scale: float = 20.0
    """confidence = exp(-disagreement_scale * disagreement), disagreement in normalised units"""
    low_confidence: float = 0.05
    """confidence at or below which min_rollouts run (the adaptive-imagination write-up's
    confidence_thresh)"""
    imagination_discount: float = 0.8
    """weight of imagined samples in PPO's loss, times the confidence (the adaptive-imagination write-up's
    0.8)"""
    adaptive_rollouts: bool = True
    """False: always max_rollouts (ablation)"""
    confidence_weighting: bool = True
    """False: imagined samples weigh imagination_discount alone (ablation)"""
    start_fraction: float = 0.25
    """dreams start from states of the latest real rollout's last fraction (the adaptive-imagination write-up's
    25%)"""
    curiosity: Curiosity = "rnd"
    """intrinsic reward: RND, the ensemble's own error, or none"""
    intrinsic_coef: float = 0.1
    """bonus = beta * intrinsic_coef * error / (moving average of the mean real error)"""
    beta: float = 0.2
    """initial curiosity weight (the adaptive-imagination write-up's 0.2)"""
    beta_rate: float = 0.01
    beta_threshold: float = 0.01
    beta_window: int = 5
    beta_max: float = 1.0
    shuffle_dreams: bool = False
    """a control: each imagined step takes the predicted outcome of another dream (same count, weight
    and reward scale, but nothing about its own action), to tell the model's predictions from the
    extra, noisy samples as the source of a gain"""
    seed: int = 1

    def __post_init__(self) -> None:
        self.model_hidden = tuple(self.model_hidden)
        checks = [
            (self.ensemble_size >= 1, f"ensemble_size must be at least 1, got {self.ensemble_size}"),
            (len(self.model_hidden) > 0 and min(self.model_hidden) >= 1,
             f"model_hidden must be one or more positive widths, got {self.model_hidden}"),
            (self.model_lr > 0, f"model_lr must be positive, got {self.model_lr}"),
            (self.model_batch_size >= 1, f"model_batch_size must be at least 1, got {self.model_batch_size}"),
            (self.model_train_steps >= 1, f"model_train_steps must be at least 1, got {self.model_train_steps}"),
            (self.holdout_every >= 2, f"holdout_every must be at least 2, got {self.holdout_every}"),
            (0 <= self.min_rollouts <= self.max_rollouts,
             f"need 0 <= min_rollouts <= max_rollouts, got min_rollouts={self.min_rollouts}, "
             f"max_rollouts={self.max_rollouts}"),
            (self.horizon >= 1, f"horizon must be at least 1, got {self.horizon}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (self.confidence in ("both", "disagreement", "loss"),
             f"confidence must be 'both', 'disagreement' or 'loss', got {self.confidence!r}"),
            (self.confidence == "loss" or self.ensemble_size >= 2,
             f"confidence {self.confidence!r} uses ensemble disagreement, which needs ensemble_size >= 2 (one model "
             "cannot disagree with itself); use confidence 'loss' for a single model"),
            (self.disagreement_scale > 0, f"disagreement_scale must be positive, got {self.disagreement_scale}"),
            (0 <= self.low_confidence < 1, f"low_confidence must be in [0, 1), got {self.low_confidence}"),
            (self.imagination_discount >= 0,
             f"imagination_discount must be non-negative, got {self.imagination_discount}"),
            (0 < self.start_fraction <= 1, f"start_fraction must be in (0, 1], got {self.start_fraction}"),
            (self.curiosity in ("rnd", "model_error", "none"),
             f"curiosity must be 'rnd', 'model_error' or 'none', got {self.curiosity!r}"),
            (self.curiosity != "model_error" or self.ensemble_size >= 2,
             "curiosity 'model_error' scores imagined steps by ensemble disagreement, which needs ensemble_size >= 2"),
            (self.intrinsic_coef >= 0, f"intrinsic_coef must be non-negative, got {self.intrinsic_coef}"),
            (0 <= self.beta <= self.beta_max,
             f"need 0 <= beta <= beta_max, got beta={self.beta}, beta_max={self.beta_max}"),
            (0 <= self.beta_rate < 1, f"beta_rate must be in [0, 1), got {self.beta_rate}"),
            (self.beta_threshold >= 0, f"beta_threshold must be non-negative, got {self.beta_threshold}"),
            (self.beta_window >= 2, f"beta_window must be at least 2, got {self.beta_window}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class AdaptiveImagination(PPOHook):
    """The PPO hook of model-based PPO: a dynamics ensemble, adaptive dreams, adaptive curiosity.

    Args:
        config: Its settings.
        observation_space: The env's single observation space (a flat Box).
        action_space: The env's single action space (a 1-D Box or Discrete).
        env_spec: Recorded in the ensemble, so its checkpoint names the env.

    Wrap the env with :meth:`record` before building PPO, so real transitions reach the model:

    ```python
    hook = AdaptiveImagination(ImaginationConfig(), envs.single_observation_space, envs.single_action_space)
    ppo = PPO(PPOConfig(total_steps=300_000), hook.record(envs), [hook])
    ```
    """

    def __init__(self, config: ImaginationConfig, observation_space: gym.Space, action_space: gym.Space,
                 env_spec: str | None = None):
        self.config = config
        self.model = DynamicsEnsemble(observation_space, action_space, config.ensemble_size, config.model_hidden,
                                      lr=config.model_lr)
        self.model.env_spec = env_spec
        self.model_optimizer = self.model.configure_optimizers()
        self.replay = TransitionReplay(self.model.obs_dim, action_space, config.holdout_every)
        self.rnd = RND(self.model.obs_dim) if config.curiosity == "rnd" else None
        self.curiosity = ModelErrorCuriosity(self.model) if config.curiosity == "model_error" else None
        self.beta = AdaptiveBeta(config.beta, config.beta_rate, config.beta_threshold, config.beta_window,
                                 high=config.beta_max)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.real_error_mean = math.nan  # running mean of the real curiosity errors, the bonus's unit
        self.confidence = self.held_out_loss = math.nan
        self.metrics: dict[str, float] = {}
        self._trained = False  # no curiosity from, nor dreams in, a model that has not trained yet

    @property
    def name(self) -> str:
        return "mbppo"

    def record(self, envs: gym.vector.VectorEnv) -> RecordTransitions:
        """The env, wrapped so that every real step is filed in this hook's replay."""
        return RecordTransitions(envs, self.replay)

    # ---------------------------------------------------------------------- curiosity

    def _error(self, obs: Tensor, action: Tensor, reward: Tensor | None, next_obs: Tensor) -> Tensor | None:
        """Curiosity error of raw transitions (real when ``reward`` is given, else imagined)."""
        if self.rnd is not None:
            return self.rnd.error(next_obs)
        if self.curiosity is not None:
            return (self.curiosity.real_error(obs, action, reward, next_obs) if reward is not None
                    else self.curiosity.imagined_error(obs, action, next_obs))
        return None

    def _bonus(self, error: Tensor) -> Tensor:
        return self.beta.beta * self.config.intrinsic_coef * error / max(self.real_error_mean, 1e-8)

    def intrinsic_reward(self, obs: Tensor, actions: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor | None:
        steps = tuple(obs.shape[:2])
        real = self._latest_rollout(steps)
        self.metrics = {"mbppo/real_reward": float(real["reward"].mean())}
        if self.config.curiosity == "none" or len(self.replay) <= real["obs"].shape[0] or not self._trained:
            return None  # no curiosity before the models have seen any data
        error = self._error(real["obs"], real["action"], real["reward"], real["next_obs"])
        batch_mean = float(error.mean())
        self.real_error_mean = batch_mean if math.isnan(self.real_error_mean) else 0.9 * self.real_error_mean + 0.1 * batch_mean
        bonus = self._bonus(error)
        self.metrics["mbppo/real_intrinsic_reward"] = float(bonus.mean())
        return bonus.view(steps)

    def _latest_rollout(self, steps: tuple[int, int]) -> dict[str, Tensor]:
        rows = steps[0] * steps[1]
        if len(self.replay) < rows:
            raise RuntimeError("the replay holds fewer transitions than the rollout: build PPO on hook.record(envs)")
        return self.replay.latest(rows)

    # ------------------------------------------------------------- model and curiosity training

    def on_rollout_end(self, rollout: Rollout) -> None:
        """Train the ensemble on all real data so far and the curiosity on the new real states."""
        start = time.perf_counter()
        self.metrics.update(self.train_model())
        model_time = time.perf_counter() - start
        if self.rnd is not None:
            start = time.perf_counter()
            latest = self._latest_rollout(tuple(rollout.obs.shape[:2]))
            self.metrics["mbppo/rnd_loss"] = self.rnd.update(latest["next_obs"], generator=self.generator)
            self.metrics["mbppo/curiosity_time"] = time.perf_counter() - start
        self.metrics["mbppo/model_time"] = model_time

    def train_model(self) -> dict[str, float]:
        """``model_train_steps`` ensemble steps on the real training rows, then its held-out loss."""
        cfg, model = self.config, self.model
        with torch.no_grad():  # standardise with the (recent) training data's statistics
            model.set_normalizer(*(v for k, v in self.replay.train_rows(limit=100_000).items()
                                   if k in ("obs", "action", "reward", "next_obs")))
        losses = []
        model.train()
        for _ in range(cfg.model_train_steps):
            batch = self.replay.sample_train((cfg.ensemble_size, cfg.model_batch_size), self.generator)
            loss = model.losses(batch)
            self.model_optimizer.zero_grad()
            loss["loss"].backward()
            self.model_optimizer.step()
            losses.append(loss["per_member"].mean())
        model.eval()
        self._trained = True
        held_out = self.replay.held_out(limit=5000)
        self.held_out_loss = model.held_out_loss(held_out) if len(held_out["obs"]) else math.nan
        return {"mbppo/model_loss": float(torch.stack(losses[-10:]).mean()), "mbppo/model_loss_done": float(loss["done"]),
                "mbppo/held_out_loss": self.held_out_loss}

    # ------------------------------------------------------------------------- imagining

    def measure_confidence(self, agent, start_obs: Tensor, kind: ConfidenceKind | None = None) -> float:
        """The model's confidence in (0, 1]; ``kind`` is ``config.confidence`` unless given.

        ``"loss"``: ``exp(-held-out loss)`` of the last :meth:`train_model` (the write-up's): how good
        the model is on average over past real data. ``"disagreement"``:
        ``exp(-disagreement_scale * disagreement)`` on ``start_obs`` with actions of the current
        policy: how unsure the members are exactly where the dreams will start, which the
        held-out data (older states, older policies) cannot say. It is blind on an untrained
        ensemble, whose random members all predict about zero and agree; ``"both"`` takes the
        lower of the two, so either doubt lowers the confidence.
        """
        kind = kind or self.config.confidence
        by_loss = math.exp(-self.held_out_loss) if math.isfinite(self.held_out_loss) else 0.0
        if kind == "loss":
            return by_loss
        actions = self._policy(agent)(start_obs)
        disagreement = float(self.model.disagreement(start_obs, actions).mean())
        self.metrics["mbppo/disagreement"] = disagreement
        by_disagreement = math.exp(-self.config.disagreement_scale * disagreement)
        return by_disagreement if kind == "disagreement" else min(by_loss, by_disagreement)

    def _policy(self, agent):
        def act(raw_obs: Tensor) -> Tensor:
            policy_out = agent.policy(agent.normalize(raw_obs))
            return agent.sample(policy_out, agent.noise(policy_out.shape[:-1], self.generator))
        return act

    @torch.no_grad()
    def extra_samples(self, agent, rollout: Rollout, ppo_config) -> WeightedSamples | None:
        cfg = self.config
        start = time.perf_counter()
        steps = tuple(rollout.obs.shape[:2])
        recent = self._latest_rollout(steps)["obs"]
        recent = recent[int(len(recent) * (1 - cfg.start_fraction)):]
        self.confidence = self.measure_confidence(agent, recent)
        if cfg.adaptive_rollouts:
            count = rollouts_for_confidence(self.confidence, cfg.min_rollouts, cfg.max_rollouts, cfg.low_confidence)
        else:
            count = cfg.max_rollouts
        weight = cfg.imagination_discount * (self.confidence if cfg.confidence_weighting else 1.0)
        self.metrics.update({"mbppo/confidence": self.confidence, "mbppo/num_rollouts": count,
                             "mbppo/imagined_weight": weight})
        if count == 0:
            self.metrics.update({"mbppo/imagined_steps": 0, "mbppo/imagination_time": time.perf_counter() - start})
            return None
        starts = recent[torch.randint(len(recent), (count,), generator=self.generator)]
        dream = imagine_transitions(self.model, self._policy(agent), starts, cfg.horizon, generator=self.generator,
                                    temperature=cfg.temperature, shuffle=cfg.shuffle_dreams)
        samples = self._to_samples(agent, dream, ppo_config)
        valid = dream.valid.bool()
        self.metrics.update({
            "mbppo/imagined_steps": int(valid.sum()),
            "mbppo/imagined_reward": float(dream.rewards[valid].mean()),
            "mbppo/imagined_termination_rate": float(dream.terminated.sum() / count),
            "mbppo/imagination_time": time.perf_counter() - start,
        })
        flat = samples[valid.flatten()]
        return WeightedSamples(flat, torch.full((len(flat.obs),), weight))

    def _to_samples(self, agent, dream, ppo_config) -> Rollout:
        """Dreamed rollouts as PPO samples (horizon * N, ...): normalised as PPO's, scaled
        rewards plus curiosity, values, log-probs, and advantages per trajectory."""
        horizon, n = dream.valid.shape
        obs, next_obs = agent.normalize(dream.obs), agent.normalize(dream.next_obs)
        policy_out, values = agent(obs.flatten(0, 1))
        logprobs, _ = agent.log_prob_entropy(policy_out, dream.actions.flatten(0, 1))
        values, next_values = values.view(horizon, n), agent.value(next_obs.flatten(0, 1)).view(horizon, n)
        rewards = dream.rewards
        if agent.return_rms is not None:  # the scale PPO gave this iteration's real rewards
            rewards = rewards / math.sqrt(float(agent.return_rms.var) + EPSILON)
            rewards = rewards.clamp(-ppo_config.reward_clip, ppo_config.reward_clip)
        if self.config.curiosity != "none" and math.isfinite(self.real_error_mean):
            error = self._error(dream.obs.flatten(0, 1), dream.actions.flatten(0, 1), None, dream.next_obs.flatten(0, 1))
            bonus = self._bonus(error).view(horizon, n)
            rewards = rewards + bonus
            self.metrics["mbppo/imagined_intrinsic_reward"] = float(bonus[dream.valid.bool()].mean())
        advantages = per_trajectory_gae(rewards, values, next_values, dream.terminated, dream.valid,
                                        ppo_config.gamma, ppo_config.gae_lambda)
        last = torch.zeros(horizon, n)
        last[-1] = 1.0
        dones = torch.maximum(dream.terminated, last)
        flat = lambda x: x.flatten(0, 1).contiguous()  # noqa: E731
        return Rollout(obs=flat(obs), actions=flat(dream.actions), next_obs=flat(next_obs), rewards=flat(rewards),
                       terminated=flat(dream.terminated), dones=flat(dones), logprobs=logprobs,
                       values=flat(values), advantages=flat(advantages), returns=flat(advantages + values))

    # ------------------------------------------------------------------------- bookkeeping

    def on_update_end(self, metrics: dict[str, float]) -> None:
        """Add this iteration's quantities to the metrics; then adapt beta to the extrinsic return's trend."""
        metrics.update(self.metrics)
        metrics["mbppo/beta"] = self.beta.beta  # the beta this iteration's rewards were scored with
        self.beta.update(metrics.get("episodic_return", math.nan))
        metrics["mbppo/return_trend"] = self.beta.trend
        metrics["mbppo/real_steps"] = len(self.replay)

    def state_dict(self) -> dict[str, Any]:
        """What resuming needs (tensors and plain values; ``torch.load(weights_only=True)`` reads it)."""
        state = {
            "model": self.model.state_dict(), "model_optimizer": self.model_optimizer.state_dict(),
            "replay": self.replay.state_dict(), "beta": self.beta.state_dict(),
            "generator": self.generator.get_state(), "real_error_mean": self.real_error_mean,
            "trained": self._trained, "held_out_loss": self.held_out_loss,
        }
        if self.rnd is not None:
            state["rnd"], state["rnd_optimizer"] = self.rnd.state_dict(), self.rnd.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.model_optimizer.load_state_dict(state["model_optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.beta.load_state_dict(state["beta"])
        self.generator.set_state(state["generator"])
        self.real_error_mean = float(state["real_error_mean"])
        self._trained = bool(state["trained"])
        self.held_out_loss = float(state["held_out_loss"])
        if self.rnd is not None:
            self.rnd.load_state_dict(state["rnd"])
            self.rnd.optimizer.load_state_dict(state["rnd_optimizer"])
        self.model.eval()
