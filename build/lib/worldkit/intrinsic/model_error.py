"""Curiosity from the dynamics ensemble itself: how wrong it is on real steps, how unsure on dreamed ones.

On a real transition the true next state is known, so the bonus is the members' mean prediction
error (before the model trains on that step). On an imagined transition there is no truth to
compare with, so the bonus is the members' disagreement, the part of the error the ensemble can
see coming. Both are in the model's normalised units; the learner divides them by the running
mean of the real errors, so the two sources share one scale.
"""

from torch import Tensor

from worldkit.models.ensemble import DynamicsEnsemble

__all__ = ["ModelErrorCuriosity"]


class ModelErrorCuriosity:
    """The ensemble's surprise as an intrinsic reward (the ensemble is trained elsewhere).

    Args:
        model: A dynamics ensemble of at least two members (one model cannot disagree with itself).
    """

    def __init__(self, model: DynamicsEnsemble):
        if model.ensemble_size < 2:
            raise ValueError("model-error curiosity scores imagined steps by ensemble disagreement, "
                             f"which needs ensemble_size >= 2 (got {model.ensemble_size}); use curiosity 'rnd' instead")
        self.model = model

    def real_error(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor) -> Tensor:
        return self.model.prediction_error(obs, action, reward, next_obs)

    def imagined_error(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        return self.model.disagreement(obs, action)
