"""Controllers trained in a dream, acting in real envs through their world model.

The world model filters each real observation into its state (``observe``), and the controller
acts on that state's features, exactly as it did in the dream. :class:`WorldModelPolicy` keeps one
state per env and plugs into the one acting driver, :func:`worldkit.data.driver.drive`, which
evaluation, collection (World Models' rounds, Dreamer's replay), videos and the parallel CMA-ES
evaluator all use.
"""

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldkit.data.driver import Episode, drive, succeeded, summarize
from worldkit.models.protocol import State, WorldModel, replace_rows
from worldkit.observations import obs_index, obs_len, obs_map
from worldkit.spaces import check_compatible

__all__ = ["Episode", "LoopEscape", "WorldModelPolicy", "drive", "evaluate_in_real_env", "succeeded", "summarize"]

Act = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]
"""features (B, F) -> actions (B,) or (B, A), as torch or numpy"""


class LoopEscape:
    """Replaces a controller's action by a random one when the real observation repeats one of
    the last ``window`` observations of its episode.

    Why: a real env is deterministic where a dream is not. A controller trained in dreams, whose
    sampled frames never repeat, can turn left at one view and right at the next, or walk into a
    wall, and see the same frames again for the rest of the episode. A repeated observation is
    the sign that the agent is back where it was; a random action there ends the loop, and the
    controller acts alone everywhere else (a floor of random actions, by contrast, also slows every
    other step). Dreams never repeat a frame, so this changes nothing there.

    Args:
        window: how many of the episode's last observations to compare with (0: never escape).
        num_actions: the size of the Discrete action space.
        actions: the probabilities of the actions drawn to escape (uniform if None).
        generator: for the draws (an episode's own, to reproduce it whichever process runs it).
    """

    def __init__(self, window: int, num_actions: int, actions: "list[float] | None" = None,
                 generator: torch.Generator | None = None):
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        if actions is not None and (len(actions) != num_actions or min(actions) < 0 or not np.isclose(sum(actions), 1)):
            raise ValueError(f"actions must be {num_actions} probabilities summing to 1, got {actions}")
        self.window, self.generator, self.escapes = window, generator, 0
        self.weights = torch.full((num_actions,), 1.0 / num_actions) if actions is None \
            else torch.as_tensor(actions, dtype=torch.float32)
        self.recent: dict[int, deque[bytes]] = {}  # per env (row): its episode's last observations

    def forget(self, rows: "np.ndarray | list[int]") -> None:
        """These envs start new episodes: nothing before counts as a repeat."""
        for row in rows:
            self.recent.pop(int(row), None)

    def __call__(self, obs: np.ndarray, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` (B,) for observations ``obs`` (B, ...), with the rows whose observation
        repeats one of the last ``window`` replaced by random ones."""
        if self.window == 0:
            return actions
        repeated = []
        for row, observation in enumerate(np.asarray(obs)):
            seen, key = self.recent.setdefault(row, deque(maxlen=self.window)), observation.tobytes()
            repeated.append(key in seen)
            seen.append(key)
        if not any(repeated):
            return actions
        self.escapes += sum(repeated)
        drawn = torch.multinomial(self.weights, len(repeated), replacement=True, generator=self.generator)
        return torch.where(torch.as_tensor(repeated), drawn.to(actions.device, actions.dtype), actions)


class WorldModelPolicy:
    """``act(obs_batch) -> actions`` for real (vector) envs, with the world model's state per env.

    Args:
        world_model: the world model the controller learned in.
        act: features (B, F) -> actions (a controller's ``act``, a Dreamer actor's, or any callable;
            torch or numpy out).
        escape: act at random where an observation repeats (:class:`LoopEscape`; Discrete actions).

    The world model observes the action the controller chose (after any escape); Box actions reach
    the env clipped into the bounds.
    """

    def __init__(self, world_model: WorldModel, act: Act, escape: LoopEscape | None = None):
        space = world_model.action_space
        if escape is not None and not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"escaping loops draws Discrete actions; this world model acts in {space}")
        self.world_model, self.controller_act, self.escape = world_model, act, escape
        self.device = world_model.features(world_model.initial_state(1)).device
        self.state: State | None = None
        self.last_action: torch.Tensor | None = None
        self.fresh: np.ndarray | None = None

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        model = self.world_model
        frames = obs_map(lambda x: torch.as_tensor(np.asarray(x), device=self.device), obs)
        batch = obs_len(frames)
        if self.state is None or len(self.fresh) != batch or self.fresh.all():
            self.state = model.observe(model.initial_state(batch), None, frames)
        else:
            state = model.observe(self.state, self.last_action, frames)
            if self.fresh.any():  # envs starting a new episode forget the last one
                rows = torch.from_numpy(np.flatnonzero(self.fresh)).to(self.device)
                restart = model.observe(model.initial_state(len(rows)), None, obs_index(frames, rows))
                state = replace_rows(state, rows, restart)
            self.state = state
        actions = torch.as_tensor(self.controller_act(model.features(self.state)), device=self.device)
        if self.escape is not None:
            actions = self.escape(obs, actions)
        self.last_action = actions
        self.fresh = np.zeros(batch, dtype=bool)
        env_actions = actions.cpu().numpy()
        if isinstance(model.action_space, gym.spaces.Box):
            env_actions = np.clip(env_actions, model.action_space.low, model.action_space.high)
        return env_actions

    def episodes_ended(self, done: np.ndarray) -> None:
        """Envs whose episode ended start the next one from the world model's initial state."""
        done = np.asarray(done, dtype=bool)
        self.fresh = done.copy() if self.fresh is None or len(self.fresh) != len(done) else self.fresh | done
        if self.escape is not None:
            self.escape.forget(np.flatnonzero(done))


@contextlib.contextmanager
def seeded_torch(seed: int, module: Any) -> Iterator[None]:
    """torch's generator (the CPU's, and the GPU's that ``module`` lives on) seeded with ``seed``
    inside, and given back as it was after."""
    parameter = next(iter(module.parameters()), None) if isinstance(module, torch.nn.Module) else None
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@torch.no_grad()
def evaluate_in_real_env(world_model: WorldModel, act: Act, env: "gym.Env | str", episodes: int = 1, *,
                         seed: int = 0, max_steps: int | None = None, escape: LoopEscape | None = None,
                         on_episode: Callable[[Episode], None] | None = None) -> dict[str, Any]:
    """Run ``episodes`` real episodes (reset seeds ``seed``, ``seed + 1``, ...) with ``act`` on the
    world model's features of the real observations.

    Args:
        world_model: filters observations into features.
        act: the controller, features -> actions.
        env: a gymnasium env or a worldkit env spec (made here, closed after).
        episodes: how many episodes.
        seed: the first episode's reset seed.
        max_steps: cut each episode after this many steps (None: the env's own limit).
        escape: act at random where an observation repeats (:class:`LoopEscape`; Discrete actions).
        on_episode: gets each episode whole (its frames, for a video).

    Returns:
        :func:`~worldkit.data.driver.summarize`'s schema, with the per-episode ``escapes`` (actions
        replaced by ``escape``).

    The world model's own sampling (a stochastic latent, as an RSSM filters) draws from torch's
    generator seeded with ``seed``, forked from the caller's: the same call gives the same
    episodes, and training that evaluates now and then draws the same numbers as without.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    owned = isinstance(env, str)
    if owned:
        from worldkit.envs import make_env

        env = make_env(env)
    try:
        check_compatible(world_model, env)
        escapes, counted = [], 0

        def count_escapes(episode: Episode) -> None:
            nonlocal counted
            now = 0 if escape is None else escape.escapes
            escapes.append(now - counted)
            counted = now
            if on_episode is not None:
                on_episode(episode)

        counted = 0 if escape is None else escape.escapes
        with seeded_torch(seed, world_model):
            rows = drive(env, WorldModelPolicy(world_model, act, escape), seeds=range(seed, seed + episodes),
                         max_steps=max_steps, on_episode=count_escapes)
    finally:
        if owned:
            env.close()
    return {**summarize(rows), "escapes": escapes}
