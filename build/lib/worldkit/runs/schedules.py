"""When a run loop acts: every so many steps, and how many updates a count of env steps owes.

Small objects in the spirit of DreamerV3's ``when`` module, so every loop counts the same way.
"""

import math
from typing import Any


class Every:
    """True when a counter reaches the next multiple of ``every`` (once per crossing, however far
    the counter jumped).

    Args:
        every: The period, in the counter's unit (env steps, say).
        after: The counter's value now (a resumed run's): the first crossing is the next multiple above it.
    """

    def __init__(self, every: int, after: int = 0):
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every = every
        self.next = (after // every + 1) * every

    def __call__(self, count: int) -> bool:
        if count < self.next:
            return False
        self.next = (count // self.every + 1) * self.every
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next = int(state["next"])


class Ratio:
    """Updates owed for a count of env steps at a replay ratio: each update replays
    ``per_update`` steps, and ``ratio`` replayed steps are owed per env step after ``prefill``.

    Args:
        ratio: Replayed steps per env step.
        per_update: Steps one update replays (batch size x sequence length).
        prefill: Env steps that owe nothing (collected before training starts).
    """

    def __init__(self, ratio: float, per_update: int, prefill: int = 0):
        if ratio <= 0 or per_update < 1 or prefill < 0:
            raise ValueError(f"need ratio > 0, per_update >= 1 and prefill >= 0, got {ratio}, {per_update}, {prefill}")
        self.ratio, self.per_update, self.prefill = ratio, per_update, prefill

    def owed(self, env_steps: int) -> int:
        """Updates owed in all after ``env_steps`` env steps (subtract those done for the ones due now)."""
        return math.floor(max(0, env_steps - self.prefill) * self.ratio / self.per_update)
