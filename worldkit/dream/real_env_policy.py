"""A controller trained in a dream, acting in the real env through its world model.

The world model filters each real observation into its state (``observe``), and the controller
acts on that state's features, exactly as it did in the dream. The policy keeps one state per
env, so it plugs into :func:`worldkit.data.collect` (which tells it when episodes end) to gather
the controller's own experience: World Models' iterative training, where the model learns what
really follows the actions the controller likes.
"""

from collections.abc import Callable

import numpy as np
import torch

from worldkit.dream.protocol import State, WorldModel
from worldkit.dream.rollout import replace_rows


class RealEnvPolicy:
    """``act(obs_batch) -> actions`` for a vector env, with the world model's state per env.

    Args:
        world_model: the world model the controller dreamed in.
        act: features (B, F) -> integer actions (B,) (e.g. ``LinearController.act``).
        explore: probability of replacing the controller's action by one from ``explore_actions``.
        explore_actions: the distribution exploration draws from (uniform if not given).
        seed: seeds exploration.
    """

    def __init__(self, world_model: WorldModel, act: Callable[[torch.Tensor], torch.Tensor], *,
                 explore: float = 0.0, explore_actions: "list[float] | None" = None, seed: int = 0):
        if not 0 <= explore <= 1:
            raise ValueError(f"explore must be a probability, got {explore}")
        self.world_model, self.controller_act, self.explore = world_model, act, explore
        num_actions = int(world_model.action_space.n)
        self.explore_actions = np.full(num_actions, 1 / num_actions) if explore_actions is None \
            else np.asarray(explore_actions, dtype=float)
        if self.explore_actions.shape != (num_actions,) or not np.isclose(self.explore_actions.sum(), 1):
            raise ValueError(f"explore_actions must be {num_actions} probabilities summing to 1, "
                             f"got {explore_actions}")
        self.explore_actions = self.explore_actions / self.explore_actions.sum()  # numpy wants 1 to the last bit
        self.rng = np.random.default_rng(seed)
        self.state: State | None = None
        self.last_action: torch.Tensor | None = None
        self.fresh: np.ndarray | None = None

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(np.asarray(obs))
        if self.state is None:
            self.state = self.world_model.observe(self.world_model.initial_state(len(frames)), None, frames)
        else:
            state = self.world_model.observe(self.state, self.last_action, frames)
            if self.fresh.any():  # envs starting a new episode forget the last one
                rows = torch.from_numpy(np.flatnonzero(self.fresh))
                first = self.world_model.observe(self.world_model.initial_state(len(rows)), None, frames[rows])
                state = replace_rows(state, rows, first)
            self.state = state
        actions = self.controller_act(self.world_model.features(self.state)).numpy().copy()
        explore = self.rng.random(len(actions)) < self.explore
        actions[explore] = self.rng.choice(len(self.explore_actions), size=int(explore.sum()), p=self.explore_actions)
        self.last_action = torch.from_numpy(actions)
        self.fresh = np.zeros(len(actions), dtype=bool)
        return actions

    def episodes_ended(self, done: np.ndarray) -> None:
        """Envs whose episode ended start the next one from the world model's initial state."""
        self.fresh = np.asarray(done, dtype=bool).copy()
