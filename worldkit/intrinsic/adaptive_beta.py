"""The curiosity weight beta, adapted by the trend of the extrinsic return (after the
adaptive-imagination write-up).

When the agent's real return is falling, it is stuck or unlearning: explore more (beta grows by
``rate``); when the return is rising, exploit what works (beta shrinks by ``rate``); in between,
leave it. The trend is the least-squares slope of the last ``window`` values of the return
(PPO's mean over the last 100 episodes, itself a moving average), per update and relative to
their mean magnitude, so the write-up's dead band of 0.01 means "1% per update" on any env.
"""

import math
from collections import deque

import numpy as np

__all__ = ["AdaptiveBeta"]


class AdaptiveBeta:
    """beta <- beta * (1 + rate) on a falling return, beta * (1 - rate) on a rising one, within [low, high].

    Args:
        initial: The starting beta (the adaptive-imagination write-up's 0.2).
        rate: Relative change per update (the adaptive-imagination write-up's 0.01).
        threshold: Dead band on the relative trend (the adaptive-imagination write-up's 0.01).
        window: Updates the trend is fitted over.
        low: Smallest beta.
        high: Largest beta (the adaptive-imagination write-up's 1.0).
    """

    def __init__(self, initial: float = 0.2, rate: float = 0.01, threshold: float = 0.01, window: int = 5,
                 low: float = 0.0, high: float = 1.0):
        if not 0 <= low <= initial <= high:
            raise ValueError(f"need 0 <= low <= initial <= high, got low={low}, initial={initial}, high={high}")
        if not 0 <= rate < 1 or threshold < 0 or window < 2:
            raise ValueError(f"need 0 <= rate < 1, threshold >= 0 and window >= 2, got {rate}, {threshold}, {window}")
        self.beta, self.rate, self.threshold, self.low, self.high = initial, rate, threshold, low, high
        self.returns: deque[float] = deque(maxlen=window)
        self.trend = math.nan

    def update(self, extrinsic_return: float) -> float:
        """Fold in this update's extrinsic return (NaN before the first episode ends: ignored); the new beta."""
        if math.isfinite(extrinsic_return):
            self.returns.append(float(extrinsic_return))
        if len(self.returns) < self.returns.maxlen:
            return self.beta
        values = np.asarray(self.returns)
        slope = np.polyfit(np.arange(len(values)), values, 1)[0]
        self.trend = float(slope / max(np.abs(values).mean(), 1e-8))
        if self.trend < -self.threshold:
            self.beta = min(self.high, self.beta * (1 + self.rate))
        elif self.trend > self.threshold:
            self.beta = max(self.low, self.beta * (1 - self.rate))
        return self.beta

    def state_dict(self) -> dict:
        return {"beta": self.beta, "returns": list(self.returns), "trend": self.trend}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.trend = float(state["beta"]), float(state["trend"])
        self.returns.clear()
        self.returns.extend(state["returns"])
