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

from worldkit.models.protocol import State, WorldModel
from worldkit.models.protocol import replace_rows


class RealEnvPolicy:
    """``act(obs_batch) -> actions`` for a vector env, with the world model's state per env.

    Args:
        world_model: the world model the controller dreamed in.
        act: features (B, F) -> integer actions (B,) (e.g. ``LinearController.act``; a controller
            that should explore carries its own floor, ``LinearController.exploring``).
    """

    def __init__(self, world_model: WorldModel, act: Callable[[torch.Tensor], torch.Tensor]):
        self.world_model, self.controller_act = world_model, act
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
        self.last_action = torch.from_numpy(actions)
        self.fresh = np.zeros(len(actions), dtype=bool)
        return actions

    def episodes_ended(self, done: np.ndarray) -> None:
        """Envs whose episode ended start the next one from the world model's initial state."""
        self.fresh = np.asarray(done, dtype=bool).copy()
