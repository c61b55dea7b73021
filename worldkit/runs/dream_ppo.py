"""PPO purely in a world model's dream, improved in rounds as model-based methods do (ME-TRPO):
collect real episodes (random at first, then with the dream-trained policy), train the world
model on all of them, train PPO only in its dream from real start states, validate the policy on
a few real episodes, repeat. The policy never learns from a real step; the run's policy is the
round's that did best in validation (ME-TRPO's real-env validation), as a dream-trained policy
can get worse from one round to the next.

A dynamics ensemble (the default, as ME-TRPO) keeps the policy from exploiting one model's
errors: every dreamed step follows a randomly drawn member. The RSSM can dream instead.

Each round is resumable: the real episodes live in an EpisodeStore, the world model, PPO and the
round counter are saved at the end of each stage, and PPO's progress inside a round after every
update, so a killed run started again goes on from its last saved stage.
"""

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from worldkit.checkpoints import save_pretrained
from worldkit.controllers import PPO, PPOConfig, evaluate
from worldkit.data import EpisodeStore, collect
from worldkit.data.datasets import SequenceDataset
from worldkit.dream.driver import WorldModelPolicy, evaluate_in_real_env
from worldkit.dream.env import DreamEnv, real_start_states
from worldkit.envs import make_env, parse_spec
from worldkit.envs.termination import termination_rule
from worldkit.models import DynamicsEnsemble
from worldkit.models.rssm import PRESETS, RSSM
from worldkit.runs.files import EvaluationLog, save_atomically, write_json
from worldkit.runs.folder import check_same_settings, hold_run_dir
from worldkit.spaces import require_flat_box
from worldkit.tracking import RunLogger, TrackingOptions

__all__ = ["DreamPPOConfig", "run_dream_ppo"]


@dataclass
class DreamPPOConfig(TrackingOptions):
    """PPO trained only in the dream of a world model that improves round by round."""

    env: str = "Walker2d-v4"
    """a state-based gymnasium MuJoCo id"""
    world_model: Literal["ensemble", "rssm"] = "ensemble"
    """the dream: a dynamics ensemble (each dreamed step by a random member) or an RSSM"""
    rounds: int = 15
    first_steps: int = 14_000
    """real steps of random actions before the first round (14,000: with whole episodes of at most 1,000
    steps and the last round's validation, the defaults stay within 300,000 real steps)"""
    steps_per_round: int = 20_000
    """real steps the dream-trained policy collects in each later round (actions sampled), counting
    the previous round's validation episodes"""
    validation_episodes: int = 5
    """real episodes of each round's deterministic policy, kept as data; the run's policy is the round's
    with the best mean validation return (0: the last round's, unvalidated)"""
    model_updates: int = 8_000
    """world-model updates per round, on every real episode so far. Why this many: with fewer, the
    ensemble foresees a fall of the policy's gait from fewer steps ahead (docs/dreaming.md), and PPO
    learns gaits that walk for a while and then fall"""
    model_batch_size: int = 256
    ensemble_size: int = 5
    ensemble_hidden: tuple[int, ...] = (200, 200)
    size: str = "tiny"
    """the RSSM's size preset (--world_model=rssm)"""
    sequence_length: int = 32
    """the RSSM's training windows"""
    dream_steps: int = 200_000
    """PPO's dreamed steps per round"""
    horizon: int = 100
    """dreamed steps before a dream is truncated (PPO bootstraps from it)"""
    temperature: float = 1.0
    penalty: float = 0.0
    """PPO's dreamed reward minus penalty x the ensemble members' spread about the step (MOPO-style
    pessimism, in reward units per normalised standard deviation): steps the members disagree on,
    where the dream is a guess, pay less. Ensemble of 2 or more only. The logged dream return and
    dream-to-real gap are the plain dream's, without the penalty"""
    learned_ends: bool = False
    """end dreams by the world model's continue head even where worldkit knows the env's own
    termination rule (gymnasium's MuJoCo tasks, :mod:`worldkit.envs.termination`): a head learnt
    from a policy's own episodes guesses ends in the faster gaits it never saw"""
    start_episodes: int = 200
    """the latest real episodes whose states dreams start from"""
    eval_episodes: int = 10
    seed: int = 0
    run_dir: str = "runs/dream_ppo_walker"
    torch_threads: int = 1
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(num_envs=64, num_steps=64, num_minibatches=8,
                                                             anneal_lr=False, gamma=0.998))
    """PPO's hyperparameters (num_envs dreams are stepped as one batch; total_steps is set per round).
    The discount is 0.998, not 0.99: at 0.99 a lunge that earns more a step and falls within a few
    hundred steps is worth more than a slower gait that never falls, and the dream, faithful to the
    policy's own gait, agrees; the real return counts every step the walker stays up"""

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"size must be one of {sorted(PRESETS)}, got {self.size!r}")
        for name in ("rounds", "first_steps", "model_updates", "model_batch_size", "ensemble_size", "dream_steps",
                     "horizon", "start_episodes", "eval_episodes", "sequence_length", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.penalty < 0 or (self.penalty and self.world_model != "ensemble"):
            raise ValueError(f"penalty must be >= 0 and needs --world_model=ensemble, got {self.penalty} with "
                             f"{self.world_model}")
        if self.penalty and self.ensemble_size < 2:
            raise ValueError(f"penalty needs --ensemble_size of 2 or more (one member cannot disagree with itself), "
                             f"got {self.ensemble_size}")
        for name in ("steps_per_round", "validation_episodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def real_steps(self) -> int:
        """The real steps collected before the last round's validation episodes (whole episodes may add a few)."""
        return self.first_steps + (self.rounds - 1) * self.steps_per_round


RESUMABLE_CHANGES = {"run_dir", "wandb_mode", "logger", "verbose", "progress", "torch_threads", "eval_episodes", "rounds"}
"""settings a killed run may be resumed with changed (more rounds continue a finished run)"""


def run_dream_ppo(config: DreamPPOConfig) -> dict[str, Any]:
    """Every round of ``config`` in its run folder (refusing bad settings before any work); the summary."""
    config.start_reporting()
    spec = parse_spec(config.env)  # an unknown id fails here, before anything runs
    with make_env(spec) as probe:
        require_flat_box(probe.observation_space, f"this recipe (on {spec})")
        spaces = probe.observation_space, probe.action_space
        ends = None if config.learned_ends else termination_rule(probe)
    run_dir = Path(config.run_dir)
    check_same_settings(run_dir, config, RESUMABLE_CHANGES)
    hold_run_dir(run_dir)
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    validation = (f", its {config.validation_episodes} deterministic validation episodes among them) and the last "
                  f"round's validation episodes" if config.validation_episodes else ")")
    print(f"dream PPO on {spec}: {config.rounds} rounds, {config.real_steps:,} real steps ({config.first_steps:,} random, "
          f"then {config.steps_per_round:,} a round with the policy{validation}, {config.model_updates:,} {config.world_model} "
          f"updates and {config.dream_steps:,} dreamed PPO steps a round, dreams ended by "
          f"{'the ' + str(spec.name) + ' termination rule' if ends else 'the learned continue head'}")

    model = _new_world_model(config, *spaces, str(spec))
    model_optimizer = model.configure_optimizers()
    ppo_state, best, state_file = None, None, run_dir / "state.pt"
    done, seconds, saved = 0, 0.0, {}
    if state_file.exists():
        saved = torch.load(state_file, weights_only=True)
        model.load_state_dict(saved["model"])
        model_optimizer.load_state_dict(saved["model_optimizer"])
        ppo_state, best, done, seconds = saved["ppo"], saved.get("best"), saved["rounds_done"], saved["seconds"]
        print(f"resuming {run_dir} after round {done}")
    evaluations = EvaluationLog(run_dir / "evaluations.jsonl", saved["real_steps"] if done else None)
    logger = RunLogger(run_dir, config, mode=config.wandb_mode, name=run_dir.name)
    sitting = time.perf_counter()
    act = None
    for round_index in range(done, config.rounds):
        # 1. real episodes: random first, then the dream-trained policy's (sampled actions)
        policy = None
        if ppo_state is not None:
            agent = _agent(config, model, ppo_state)
            policy = WorldModelPolicy(model, lambda features, agent=agent: agent.act(features, deterministic=False))
        target = config.first_steps + round_index * config.steps_per_round
        store = collect(run_dir / "data", str(spec), steps=target, policy=policy, seed=config.seed * 1000 + round_index,
                        progress=config.progress)
        # 2. the world model, on every real episode so far (kept till the round ends: a round killed
        # later resumes with the model its PPO trained in)
        model_file = run_dir / "model_round.pt"
        trained = torch.load(model_file, weights_only=True) if model_file.exists() else {}
        if trained.get("round") == round_index:
            model.load_state_dict(trained["model"])
            model_optimizer.load_state_dict(trained["model_optimizer"])
            model_loss = trained["loss"]
        else:
            model_loss = _train_world_model(config, model, model_optimizer, store, round_index)
            save_atomically({"model": model.state_dict(), "model_optimizer": model_optimizer.state_dict(),
                             "loss": model_loss, "round": round_index}, model_file)
        # 3. PPO in the dream only, from the states of the latest real episodes
        episodes = [store.episode(i) for i in range(max(0, len(store) - config.start_episodes), len(store))]
        starts = real_start_states(model, episodes)
        ppo = _dream_ppo(config, model, starts, ends, round_index, ppo_state, run_dir, logger)
        ppo_state = ppo.state_dict()
        # 4. the deterministic policy on validation episodes, kept as data; the best round's is the run's
        act = lambda features, agent=ppo.agent: agent.act(features, deterministic=True)
        store, validation = _validate(config, spec, run_dir, store, WorldModelPolicy(model, act), round_index)
        if config.validation_episodes and (best is None or validation >= best["validation_return"]):
            best = copy.deepcopy({"round": round_index + 1, "validation_return": validation,
                                  "agent": ppo.agent.state_dict(), "model": model.state_dict()})  # training goes on
        # 5. the policy, scored in the real env and in the dream over the same horizon
        row = _evaluate(config, spec, model, ppo.agent, act, real_start_states(model, episodes, steps_per_episode=0),
                        ends, round_index, store, model_loss)
        row["seconds"] = round(seconds + time.perf_counter() - sitting, 1)
        if validation is not None:
            row["validation_return"] = validation
        evaluations.append(row)
        logger.log({f"eval/{k}": v for k, v in row.items() if k not in ("step", "round")}, step=row["real_steps"])
        print(f"round {round_index + 1}/{config.rounds}: {row['real_steps']:,} real steps, real return "
              f"{row['real_return']:.0f}, dream {row['dream_return']:.0f} over {config.horizon} steps "
              f"(real {row['real_return_at_horizon']:.0f})" + (f", validation {validation:.0f}" if validation is not None else ""))
        save_atomically({"model": model.state_dict(), "model_optimizer": model_optimizer.state_dict(),
                         "ppo": ppo_state, "best": best, "rounds_done": round_index + 1, "real_steps": row["step"],
                         "seconds": row["seconds"]}, state_file)
        for stage_file in (model_file, run_dir / "ppo_round.pt"):  # kept till here: a killed round skips its stages
            stage_file.unlink(missing_ok=True)
    if best is None:  # no validation: the last round's policy
        best = {"round": len(evaluations.rows), "agent": ppo_state["agent"], "model": model.state_dict()}
    summary = _write_artifacts(config, spec, run_dir, model, best, evaluations.rows, logger)
    logger.finish()
    return summary


def _new_world_model(config: DreamPPOConfig, observation_space, action_space, env_spec: str):
    if config.world_model == "ensemble":
        model = DynamicsEnsemble(observation_space, action_space, ensemble_size=config.ensemble_size,
                                 hidden_sizes=config.ensemble_hidden)
    else:
        model = RSSM(observation_space, action_space, size=config.size)
    model.env_spec = env_spec
    return model


def _train_world_model(config: DreamPPOConfig, model, optimizer, store: EpisodeStore, round_index: int) -> float:
    """``model_updates`` steps on random batches of every real episode; the mean loss of the last 100."""
    generator = np.random.default_rng([config.seed, round_index])
    losses = []
    model.train()
    if isinstance(model, DynamicsEnsemble):
        rows = _transitions(store)
        model.set_normalizer(rows["obs"], rows["action"], rows["reward"], rows["next_obs"])
        for _ in range(config.model_updates):
            index = torch.as_tensor(generator.integers(len(rows["obs"]), size=(model.ensemble_size, config.model_batch_size)))
            loss = model.losses({key: value[index] for key, value in rows.items()})["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item() / model.ensemble_size)
    else:
        dataset = SequenceDataset(store, config.sequence_length)
        batch_size = max(1, config.model_batch_size // config.sequence_length)
        for _ in range(config.model_updates):
            items = [dataset[int(i)] for i in generator.integers(len(dataset), size=batch_size)]
            batch = {key: torch.stack([item[key] for item in items]) for key in ("obs", "action", "reward", "terminated", "mask")}
            loss = model.losses(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), model.hparams.grad_clip)
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return float(np.mean(losses[-100:]))


def _validate(config: DreamPPOConfig, spec, run_dir: Path, store: EpisodeStore, policy,
              round_index: int) -> "tuple[EpisodeStore, float | None]":
    """The deterministic policy's mean return over ``validation_episodes`` real episodes, added to the
    store (a killed run resumes them: the round's first validation episode is marked beforehand)."""
    if not config.validation_episodes:
        return store, None
    marker = run_dir / "validation.json"
    first = json.loads(marker.read_text()) if marker.exists() else {}
    if first.get("round") != round_index:
        first = {"round": round_index, "episode": len(store)}
        write_json(marker, first)
    store = collect(store.path, str(spec), episodes=first["episode"] + config.validation_episodes, policy=policy,
                    seed=config.seed * 1000 + 500 + round_index, progress=config.progress)
    returns = [float(store.episode(i)["reward"].sum()) for i in range(first["episode"], first["episode"] + config.validation_episodes)]
    return store, float(np.mean(returns))


def _transitions(store: EpisodeStore) -> dict[str, torch.Tensor]:
    """Every real transition as rows: obs, action, reward, next_obs, terminated."""
    parts: dict[str, list[np.ndarray]] = {"obs": [], "action": [], "reward": [], "next_obs": [], "terminated": []}
    for episode in store:
        parts["obs"].append(episode["obs"][:-1])
        parts["next_obs"].append(episode["obs"][1:])
        for key in ("action", "reward", "terminated"):
            parts[key].append(episode[key])
    return {key: torch.as_tensor(np.concatenate(value)).float() if key != "action" or value[0].dtype.kind == "f"
            else torch.as_tensor(np.concatenate(value)) for key, value in parts.items()}


def _agent(config: DreamPPOConfig, model, ppo_state: dict):
    """The policy of a saved PPO state, rebuilt (on a one-dream env) to act on the model's features."""
    ppo = PPO(dataclasses.replace(config.ppo, num_envs=1, num_minibatches=1, seed=config.seed),  # it only acts
              DreamEnv(model, model.initial_state(1), 1, horizon=config.horizon))
    ppo.agent.load_state_dict(ppo_state["agent"])
    return ppo.agent.eval()


def _dream_ppo(config: DreamPPOConfig, model, starts, ends, round_index: int, ppo_state: "dict | None", run_dir: Path,
               logger: RunLogger) -> PPO:
    """PPO continued for ``dream_steps`` more dreamed steps, saved after every update (a killed round
    resumes its PPO where it stopped)."""
    dreams = DreamEnv(model, starts, config.ppo.num_envs, horizon=config.horizon, temperature=config.temperature,
                      ends=ends, penalty=config.penalty)
    ppo = PPO(dataclasses.replace(config.ppo, total_steps=(round_index + 1) * config.dream_steps, seed=config.seed), dreams)
    round_file = run_dir / "ppo_round.pt"
    if round_file.exists():
        ppo.load_state_dict(torch.load(round_file, weights_only=True))
    elif ppo_state is not None:
        ppo.load_state_dict(ppo_state)

    def after_update(metrics: dict) -> None:
        logger.log({f"dream/{k}": v for k, v in metrics.items() if np.isfinite(v)}, step=ppo.global_step)
        save_atomically(ppo.state_dict(), round_file)

    ppo.learn(progress=config.progress, callback=after_update)
    return ppo


def _evaluate(config: DreamPPOConfig, spec, model, agent, act, first_states, ends, round_index: int, store: EpisodeStore,
              model_loss: float) -> dict[str, Any]:
    """The policy in the real env (whole episodes, and their first ``horizon`` steps) and in the dream
    over ``horizon`` steps from real first states, so the dream-to-real gap compares like with like."""
    seed = 10_000 + config.seed
    whole = evaluate_in_real_env(model, act, str(spec), config.eval_episodes, seed=seed)
    at_horizon = evaluate_in_real_env(model, act, str(spec), config.eval_episodes, seed=seed, max_steps=config.horizon)
    in_dream = evaluate(agent, DreamEnv(model, first_states, 1, horizon=config.horizon, temperature=config.temperature,
                                        ends=ends),
                        config.eval_episodes, seed=seed)
    return {"step": store.num_steps, "round": round_index + 1, "real_steps": store.num_steps, "dream_steps": (round_index + 1) * config.dream_steps,
            "real_return": whole["mean_return"], "real_std": whole["std_return"], "real_length": whole["mean_length"],
            "real_return_at_horizon": at_horizon["mean_return"], "dream_return": in_dream["mean_return"],
            "dream_to_real_gap": in_dream["mean_return"] - at_horizon["mean_return"], "model_loss": model_loss}


def _write_artifacts(config: DreamPPOConfig, spec, run_dir: Path, model, best: dict, rows: list[dict],
                     logger: RunLogger) -> dict[str, Any]:
    """The chosen round's policy and world model (the policy acts on that model's features) as checkpoints,
    its scores as the summary, and the learning curve."""
    from worldkit.plots import learning_curves

    model.load_state_dict(best["model"])
    agent = _agent(config, model, best)
    chosen, last = rows[best["round"] - 1], rows[-1]
    summary = {"env": str(spec), "world_model": config.world_model, "rounds": len(rows), "policy_round": best["round"],
               **{key: chosen[key] for key in ("real_return", "real_std", "real_return_at_horizon", "dream_return",
                                               "dream_to_real_gap", "validation_return") if key in chosen},
               "real_steps": last["real_steps"], "dream_steps": last["dream_steps"], "hours": round(last["seconds"] / 3600, 3)}
    for part, module in (("policy", agent), ("world_model", model)):
        logger.log_checkpoint(save_pretrained(module, run_dir / "checkpoints" / part, metrics=summary),
                              f"{run_dir.name}-{part}".replace("_", "-"), summary)
    steps = [row["real_steps"] for row in rows]
    curves = {"real return": [(steps, [row["real_return"] for row in rows])],
              f"dream return over {config.horizon} steps": [(steps, [row["dream_return"] for row in rows])],
              f"real return over {config.horizon} steps": [(steps, [row["real_return_at_horizon"] for row in rows])]}
    if all("validation_return" in row for row in rows):
        curves["validation return"] = [(steps, [row["validation_return"] for row in rows])]
    learning_curves(curves, run_dir / "learning_curve.png", xlabel="real env steps",
                    title=f"PPO only in dreams of {spec} ({config.world_model}); the run's policy: round {best['round']}")
    logger.log_image("learning_curve", run_dir / "learning_curve.png")
    write_json(run_dir / "summary.json", summary)
    return summary
