"""Building blocks shared by the RSSM and the Dreamer actor-critic: MLPs, symlog, two-hot rewards.

symlog squashes large magnitudes (sign(x) log(1 + |x|)) so one network handles rewards and
observations of any scale; two-hot regression predicts a distribution over fixed bins in symlog
space, whose gradient does not grow with the size of the target (DreamerV3's reward head).
"""

import torch
from torch import nn

from worldkit.nets import MLP
from worldkit.nets import mlp as build_mlp


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def mlp(inputs: int, hidden: int, layers: int, outputs: int | None = None) -> MLP:
    """``layers`` x (Linear, LayerNorm, SiLU), then a Linear to ``outputs`` if given."""
    widths = [inputs, *[hidden] * layers, *([] if outputs is None else [outputs])]
    return build_mlp(widths, "silu", layer_norm=True, activate_output=outputs is None)


class ScalarHead(nn.Module):
    """A scalar per input: plain regression (``"mse"``) or two-hot over symlog bins (``"twohot"``).

    The two-hot head's last layer starts at zero, so its first predictions are 0 rather than
    noise of the bins' scale.
    """

    def __init__(self, inputs: int, hidden: int, layers: int, kind: str = "mse", bins: int = 255):
        super().__init__()
        if kind not in ("mse", "twohot"):
            raise ValueError(f"a scalar head is 'mse' or 'twohot', not {kind!r}")
        self.kind = kind
        self.net = mlp(inputs, hidden, layers, bins if kind == "twohot" else 1)
        if kind == "twohot":
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
            self.register_buffer("bins", torch.linspace(-20, 20, bins), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted value (its mean), shape ``x.shape[:-1]``."""
        out = self.net(x).float()  # bins and softmax in float32, also under bf16 autocast
        if self.kind == "mse":
            return out.squeeze(-1)
        return symexp((out.softmax(-1) * self.bins).sum(-1))

    def loss(self, x: torch.Tensor, target: torch.Tensor, pull_towards: torch.Tensor | None = None,
             pull: float = 0.0) -> torch.Tensor:
        """Per-sample loss towards ``target`` (shape ``target.shape``), plus ``pull`` times the loss
        towards ``pull_towards`` when given: both from one forward pass."""
        out = self.net(x).float()
        if self.kind == "mse":
            error = lambda goal: (out.squeeze(-1) - goal).square()  # noqa: E731
        else:
            log_probs = out.log_softmax(-1)
            error = lambda goal: _two_hot_cross_entropy(log_probs, symlog(goal), self.bins)  # noqa: E731
        loss = error(target)
        return loss if pull_towards is None or not pull else loss + pull * error(pull_towards)


def _two_hot_cross_entropy(log_probs: torch.Tensor, x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predicted bins against x's two-hot target: weights on the two bins
    around each value that sum to 1 and average to the value; only those two bins are read."""
    x = x.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, x.contiguous()).clamp(1, len(bins) - 1)
    below = above - 1
    weight_above = (x - bins[below]) / (bins[above] - bins[below])
    pick = lambda index: log_probs.gather(-1, index[..., None]).squeeze(-1)  # noqa: E731
    return -((1 - weight_above) * pick(below) + weight_above * pick(above))
