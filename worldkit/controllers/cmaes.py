"""C of World Models: a linear controller on a world model's features, optimised by CMA-ES in a dream.

Any world model will do: for Discrete actions the controller's outputs are logits (argmax, or a
sample), for Box actions they are squashed by tanh into the bounds, a = low + (tanh(x) + 1) / 2 *
(high - low).

In a dream the whole population is one batch: P candidates x R rollouts are P*R rows of one
imagination rollout, and every candidate's weights act on its own rows through one batched
matmul, so a generation costs ``horizon`` batched steps rather than P separate rollouts. The R
start states of a generation are shared by all candidates, so they are compared on the same
situations.

Evaluation in the real env runs episodes in worker processes, which load the world model and
controller from checkpoints; a worker that dies fails the evaluation with
:class:`WorkerDiedError` instead of leaving it waiting.
"""

import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cma
import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from worldkit.checkpoints import checkpointable, from_pretrained, save_pretrained
from worldkit.dream.driver import LoopEscape, evaluate_in_real_env, summarize
from worldkit.dream.imagine import Dream, imagine
from worldkit.models.protocol import State, WorldModel, repeat_state, select_state
from worldkit.spaces import action_size, space_from_dict, space_to_dict, to_bounds


class WorkerDiedError(RuntimeError):
    """A real-env evaluation worker process ended without finishing its work."""


def choose_actions(logits: torch.Tensor, deterministic: bool, generator: torch.Generator | None = None,
                   explore: float = 0.0, explore_actions: "list[float] | None" = None) -> torch.Tensor:
    """The likeliest action, or one sampled from softmax(logits) (by the Gumbel-max trick); then,
    with probability ``explore``, one drawn from ``explore_actions`` (uniform if None) instead."""
    if not deterministic:
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_min(1e-20)
        logits = logits - torch.log(-torch.log(uniform))
    actions = logits.argmax(-1)
    if explore > 0:
        num_actions = logits.shape[-1]
        weights = torch.full((num_actions,), 1.0 / num_actions) if explore_actions is None \
            else torch.as_tensor(explore_actions, dtype=torch.float32)
        drawn = torch.multinomial(weights, actions.numel(), replacement=True, generator=generator)
        replace = torch.rand(actions.shape, generator=generator, device=logits.device) < explore
        actions = torch.where(replace, drawn.to(actions.device).reshape(actions.shape), actions)
    return actions


def check_exploration(explore: float, explore_actions: "list[float] | None", num_actions: int | None = None) -> None:
    """Raise ValueError unless ``explore`` is a probability and ``explore_actions`` (if given) a
    distribution (over ``num_actions`` actions, when that is given)."""
    if not 0 <= explore <= 1:
        raise ValueError(f"explore must be a probability in [0, 1], got {explore}")
    if explore_actions is None:
        return
    if min(explore_actions) < 0 or not np.isclose(sum(explore_actions), 1):
        raise ValueError(f"explore_actions must be probabilities summing to 1, got {explore_actions}")
    if num_actions is not None and len(explore_actions) != num_actions:
        raise ValueError(f"explore_actions must give all {num_actions} actions a probability, got {explore_actions}")


@checkpointable
class LinearController(nn.Module):
    """Outputs = features @ W + b, World Models' controller: action logits for a Discrete space,
    tanh-squashed actions for a Box.

    Args:
        feature_dim: size of the world model's features.
        num_actions: size of the Discrete action space, or of the Box's one dimension.
        deterministic: act by argmax of the logits; otherwise sample from their softmax (Discrete).
        action_space: a Box (or its description) for continuous actions; None for Discrete.
        explore: probability that an action is replaced by one drawn from ``explore_actions``
            (Discrete only): a floor of randomness that is part of the policy, in the dream and in
            the real env alike.
        explore_actions: the distribution those actions come from; uniform if None.
    """

    def __init__(self, feature_dim: int, num_actions: int, deterministic: bool = True,
                 action_space: "gym.Space | dict[str, Any] | None" = None, explore: float = 0.0,
                 explore_actions: "list[float] | None" = None):
        super().__init__()
        if isinstance(action_space, gym.Space):
            action_space = space_to_dict(action_space)
        self.box = None if action_space is None else space_from_dict(action_space)
        if self.box is not None and (not isinstance(self.box, gym.spaces.Box) or action_size(self.box) != num_actions):
            raise ValueError(f"action_space must be a 1-D Box of {num_actions} dimensions (None for Discrete), "
                             f"got {self.box}")
        check_exploration(explore, explore_actions, num_actions)
        if self.box is not None and explore > 0:
            raise ValueError("explore replaces Discrete actions; a Box controller takes explore=0")
        explore_actions = None if explore_actions is None else [float(p) for p in explore_actions]
        self.hparams = {"feature_dim": feature_dim, "num_actions": num_actions, "deterministic": deterministic,
                        "action_space": action_space, "explore": float(explore), "explore_actions": explore_actions}
        self.weight = nn.Parameter(torch.zeros(feature_dim, num_actions))
        self.bias = nn.Parameter(torch.zeros(num_actions))

    @classmethod
    def for_space(cls, feature_dim: int, space: gym.Space, deterministic: bool = True, explore: float = 0.0,
                  explore_actions: "list[float] | None" = None) -> "LinearController":
        """A controller for a world model's action space, Discrete or Box."""
        return cls(feature_dim, action_size(space), deterministic,
                   space if isinstance(space, gym.spaces.Box) else None, explore, explore_actions)

    def exploring(self, explore: float, explore_actions: "list[float] | None" = None) -> "LinearController":
        """A copy of this controller that keeps a floor of ``explore`` random actions when it acts."""
        copy = LinearController(**{**self.hparams, "explore": explore, "explore_actions": explore_actions})
        copy.load_state_dict(self.state_dict())
        return copy

    @property
    def num_parameters(self) -> int:
        return self.weight.numel() + self.bias.numel()

    @torch.no_grad()
    def load_vector(self, vector: "np.ndarray | torch.Tensor") -> "LinearController":
        """Set W and b from one flat vector (CMA-ES's search space: W row-major, then b)."""
        weight, bias = split_parameters(torch.as_tensor(vector, dtype=torch.float32)[None], *self.weight.shape)
        self.weight.copy_(weight[0])
        self.bias.copy_(bias[0])
        return self

    def vector(self) -> np.ndarray:
        """W and b as one flat vector, the inverse of :meth:`load_vector`."""
        return torch.cat([self.weight.detach().reshape(-1), self.bias.detach()]).cpu().numpy()

    @torch.no_grad()
    def act(self, features: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer actions (B,), or Box actions (B, A), for features (B, feature_dim)."""
        outputs = features @ self.weight + self.bias
        if self.box is not None:
            return to_bounds(torch.tanh(outputs), self.box)
        return choose_actions(outputs, self.hparams["deterministic"], generator, self.hparams["explore"],
                              self.hparams["explore_actions"])


def split_parameters(vectors: torch.Tensor, feature_dim: int, num_actions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat controller vectors (P, D) as weights (P, F, A) and biases (P, A)."""
    cut = feature_dim * num_actions
    if vectors.shape[-1] != cut + num_actions:
        raise ValueError(f"a linear controller on {feature_dim} features and {num_actions} actions has "
                         f"{cut + num_actions} parameters, got vectors of {vectors.shape[-1]}")
    return vectors[:, :cut].reshape(-1, feature_dim, num_actions), vectors[:, cut:]


class LinearPopulation:
    """P linear controllers acting together on P*R rows (candidate-major: row p*R + r is
    candidate p's rollout r), as one batched matmul. ``box`` makes the outputs Box actions."""

    def __init__(self, vectors: torch.Tensor, feature_dim: int, num_actions: int, rollouts: int, *,
                 deterministic: bool = True, generator: torch.Generator | None = None,
                 box: gym.spaces.Box | None = None, explore: float = 0.0, explore_actions: "list[float] | None" = None):
        self.weight, self.bias = split_parameters(vectors, feature_dim, num_actions)
        self.rollouts, self.deterministic, self.generator, self.box = rollouts, deterministic, generator, box
        self.explore, self.explore_actions = explore, explore_actions

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        grouped = features.reshape(len(self.weight), self.rollouts, -1)
        outputs = torch.baddbmm(self.bias[:, None, :], grouped, self.weight)
        if self.box is not None:
            return to_bounds(torch.tanh(outputs), self.box).reshape(-1, outputs.shape[-1])
        return choose_actions(outputs, self.deterministic, self.generator, self.explore,
                              self.explore_actions).reshape(-1)


@dataclass
class CMAESConfig:
    """CMA-ES in a dream (each field is a recipe flag)."""

    population: int = 64
    """candidates per generation"""
    generations: int = 100
    sigma0: float = 0.1
    """initial step size of the search around its start (W = 0, b = 0, or a warm start's controller)"""
    rollouts: int = 16
    """dreams per candidate per generation (shared start states)"""
    horizon: int = 150
    """dreamed steps per rollout"""
    temperature: float = 1.15
    """the world model's sampling temperature (tau); above 1 (World Models used 1.15) the dream is
    noisier and harder for the controller to exploit"""
    discount: float = 1.0
    """gamma of the shaped return (with step_penalty, the World Models write-up's shaping)"""
    step_penalty: float = 0.0
    """penalty per dreamed step, discounted by gamma^t; 0 turns shaping off"""
    deterministic: bool = False
    """act by argmax of the logits; by default sample from their softmax (Discrete actions). A
    deterministic memoryless-ish controller in a deterministic env repeats itself: on Sidewalk,
    one facing a wall pushed into it for the rest of the episode (6% success), while the same
    search with sampled actions gave 84%, its dreamed return matching the real one"""
    explore: float = 0.0
    """probability that a chosen action is replaced by one drawn from explore_actions, in the
    search's dreams and (kept by the resulting controller) wherever it acts after"""
    explore_actions: tuple[float, ...] | None = None
    """the distribution of exploring actions; uniform if None"""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.explore_actions is not None:
            self.explore_actions = tuple(float(p) for p in self.explore_actions)
        check_exploration(self.explore, self.explore_actions)
        if min(self.population, self.generations, self.rollouts, self.horizon) < 1:
            raise ValueError("population, generations, rollouts and horizon must be positive")
        if self.population < 2 or self.sigma0 <= 0 or not 0 < self.discount <= 1:
            raise ValueError("population must be >= 2, sigma0 > 0 and discount in (0, 1]")


@torch.no_grad()
def dream_population(world_model: WorldModel, starts: State, vectors: torch.Tensor, config: CMAESConfig,
                     generator: torch.Generator | None = None) -> Dream:
    """Dream every candidate (rows of ``vectors``) from every start state in one batch of
    P * R rows, candidate-major."""
    rollouts, space = len(starts[0]), world_model.action_space
    population = LinearPopulation(vectors, world_model.feature_dim, action_size(space), rollouts,
                                  deterministic=config.deterministic, generator=generator,
                                  box=space if isinstance(space, gym.spaces.Box) else None,
                                  explore=config.explore, explore_actions=config.explore_actions)
    return imagine(world_model, repeat_state(starts, len(vectors)), population, config.horizon,
                           temperature=config.temperature, generator=generator)


@dataclass
class CMAESResult:
    controller: LinearController
    """the search distribution's final mean"""
    history: list[dict[str, float]]
    """per generation: best/mean/worst candidate fitness, sigma, and the mean's fitness and
    unshaped return and expected length"""


def train_in_dream(world_model: WorldModel, start_states: State, config: CMAESConfig, *,
                   initial: LinearController | None = None,
                   callback: Callable[[dict[str, float]], None] | None = None,
                   progress: bool = True) -> CMAESResult:
    """Optimise a :class:`LinearController` with CMA-ES on dreamed returns.

    Args:
        world_model: any :class:`WorldModel` (Discrete or 1-D Box actions).
        start_states: a pool of states filtered from real first frames; each generation draws
            ``config.rollouts`` of them (with replacement) for all its candidates.
        config: the search's settings.
        initial: a controller to centre the first generation on (a warm start); W = 0, b = 0 if None.
        callback: called with each generation's row of the history.
        progress: show a progress bar.
    """
    outputs = action_size(world_model.action_space)
    check_exploration(config.explore, config.explore_actions, outputs)
    if config.explore > 0 and not isinstance(world_model.action_space, gym.spaces.Discrete):
        raise ValueError(f"explore replaces Discrete actions; this world model acts in {world_model.action_space}")
    dim = world_model.feature_dim * outputs + outputs
    start = np.zeros(dim) if initial is None else initial.vector().astype(np.float64)
    if len(start) != dim:
        raise ValueError(f"the initial controller has {len(start)} parameters; a linear controller on this world "
                         f"model's {world_model.feature_dim} features and {outputs} outputs has {dim}")
    strategy = cma.CMAEvolutionStrategy(start, config.sigma0,
                                        {"popsize": config.population, "seed": config.seed + 1, "verbose": -9})
    device = start_states[0].device
    generator = torch.Generator(device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    history = []
    for generation in tqdm(range(config.generations), desc="CMA-ES in the dream", disable=not progress):
        candidates = strategy.ask()
        vectors = torch.as_tensor(np.stack([*candidates, strategy.mean]), dtype=torch.float32, device=device)
        starts = select_state(start_states, torch.as_tensor(rng.integers(len(start_states[0]), size=config.rollouts)))
        dream = dream_population(world_model, starts, vectors, config, generator)
        fitness = dream.returns(config.discount, config.step_penalty).reshape(len(vectors), -1).mean(1).cpu().numpy()
        strategy.tell(candidates, (-fitness[:-1]).tolist())
        mean_rows = slice(config.population * config.rollouts, None)
        row = {"generation": generation, "best": float(fitness[:-1].max()), "mean": float(fitness[:-1].mean()),
               "worst": float(fitness[:-1].min()), "sigma": float(strategy.sigma), "mean_candidate": float(fitness[-1]),
               "mean_candidate_return": dream.returns()[mean_rows].mean().item(),
               "mean_candidate_length": dream.expected_length()[mean_rows].mean().item()}
        history.append(row)
        if callback is not None:
            callback(row)
    controller = LinearController.for_space(world_model.feature_dim, world_model.action_space, config.deterministic,
                                            config.explore, config.explore_actions)
    return CMAESResult(controller.load_vector(strategy.mean), history)


def evaluate_in_env(world_model: WorldModel, controller: LinearController, env_spec: str, episodes: int, *,
                    seed: int = 0, workers: int = 2, size: tuple[int, int] | None = None,
                    escape: int = 0, escape_actions: "list[float] | None" = None,
                    progress: bool = True) -> dict[str, Any]:
    """Run ``episodes`` real episodes (seeds ``seed``, ``seed + 1``, ...) in ``workers`` processes
    (one worker: in this process).

    The controller acts on the world model's features of the real frames. An episode succeeds
    when it is terminated with a positive last reward (MiniWorld's tasks pay only on success).
    With ``escape`` > 0, an action taken at a frame that repeats one of the episode's last
    ``escape`` frames is drawn from ``escape_actions`` instead (:class:`LoopEscape`).

    Returns:
        :func:`~worldkit.data.driver.summarize`'s schema with the per-episode ``escapes``, in seed order.

    Raises:
        WorkerDiedError: a worker process died (killed, out of memory, a crash in native code).
    """
    if episodes < 1 or workers < 1:
        raise ValueError("episodes and workers must be at least 1")
    if escape and not isinstance(world_model.action_space, gym.spaces.Discrete):
        raise ValueError(f"escaping loops draws Discrete actions; this world model acts in {world_model.action_space}")
    LoopEscape(escape, action_size(world_model.action_space), escape_actions)  # bad values fail here, not in a worker
    if min(workers, episodes) == 1:  # no pool: a spawned worker costs seconds of imports
        from worldkit.envs import make_env

        with make_env(env_spec, size=size) as env:
            return summarize([_episode(world_model, controller, env, seed + i, escape, escape_actions)
                              for i in tqdm(range(episodes), desc=f"evaluate in {env_spec}", disable=not progress)])
    with tempfile.TemporaryDirectory(prefix="worldkit-eval-") as folder:
        model_dir = save_pretrained(world_model, Path(folder) / "world_model", command="evaluate_in_env")
        controller_dir = save_pretrained(controller, Path(folder) / "controller", command="evaluate_in_env")
        pool = ProcessPoolExecutor(min(workers, episodes), mp_context=get_context("spawn"), initializer=_start_worker,
                                   initargs=(env_spec, size, str(model_dir), str(controller_dir), escape,
                                             escape_actions))
        results = {}
        try:
            futures = {pool.submit(_run_episode, seed + i): i for i in range(episodes)}
            for future in tqdm(as_completed(futures), total=episodes, desc=f"evaluate in {env_spec}",
                               disable=not progress):
                results[futures[future]] = future.result()
        except BrokenProcessPool as error:
            raise WorkerDiedError(
                f"a worker process evaluating {env_spec} died before finishing ({len(results)} of {episodes} "
                "episodes done): it was killed, ran out of memory, crashed in native code, or failed to start "
                "(make the env once in this process to see why; a script that evaluates needs its work under "
                "`if __name__ == '__main__':`, since workers are spawned and import it)"
            ) from error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return summarize([results[i] for i in range(episodes)])


_WORKER: dict[str, Any] = {}


def _start_worker(env_spec: str, size: tuple[int, int] | None, model_dir: str, controller_dir: str, escape: int = 0,
                  escape_actions: "list[float] | None" = None) -> None:
    """Each worker builds its env and loads the checkpoints once; one thread, as workers share cores."""
    from worldkit.envs import make_env

    torch.set_num_threads(1)
    _WORKER.update(env=make_env(env_spec, size=size), world_model=from_pretrained(model_dir),
                   controller=from_pretrained(controller_dir), escape=(escape, escape_actions))


def _run_episode(seed: int) -> dict[str, Any]:
    return _episode(_WORKER["world_model"], _WORKER["controller"], _WORKER["env"], seed, *_WORKER["escape"])


def _episode(world_model: WorldModel, controller: LinearController, env: gym.Env, seed: int, escape: int,
             escape_actions: "list[float] | None") -> dict[str, Any]:
    """One real episode, reproducible from its seed alone, whichever process runs it."""
    generator = torch.Generator().manual_seed(seed)  # the episode's action samples
    loop_escape = LoopEscape(escape, action_size(world_model.action_space), escape_actions, generator) if escape else None
    result = evaluate_in_real_env(world_model, lambda features: controller.act(features, generator), env,
                                  seed=seed, escape=loop_escape)
    return {"return": result["returns"][0], "length": result["lengths"][0], "success": result["successes"][0],
            "escapes": result["escapes"][0]}
