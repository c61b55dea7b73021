"""The one MLP builder: world models, curiosity modules and the PPO policy make their MLPs here.

Its stack is an ``nn.Sequential`` of Linear, optional LayerNorm and activation modules (state-dict
keys ``0.weight``, ``1.weight``, ...) whose forward calls ``F.linear`` and the activation
function directly: world models inside PPO and the policy run at every env step on 64-unit
layers, where module-call overhead would cost about as much as the arithmetic. The numbers are
those of the modules themselves.
"""

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["ACTIVATIONS", "MLP", "mlp", "numpy_layers", "orthogonal_init"]

NumpyFunction = Callable[[np.ndarray], np.ndarray]


def numpy_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


ACTIVATIONS: dict[str, tuple[type[nn.Module], Callable[[Tensor], Tensor], NumpyFunction | None]] = {
    "relu": (nn.ReLU, torch.relu, numpy_relu),
    "tanh": (nn.Tanh, torch.tanh, np.tanh),
    "silu": (nn.SiLU, F.silu, None),
}
"""name -> (module, the function it computes, the same in numpy or None)"""

_FUNCTIONS = {module: function for module, function, _ in ACTIVATIONS.values()}


class MLP(nn.Sequential):
    """Build it with :func:`mlp`."""

    def forward(self, x: Tensor) -> Tensor:
        for layer in self:
            if isinstance(layer, nn.Linear):
                x = F.linear(x, layer.weight, layer.bias)
            elif type(layer) in _FUNCTIONS:
                x = _FUNCTIONS[type(layer)](x)
            else:
                x = layer(x)
        return x

    @property
    def linears(self) -> list[nn.Linear]:
        return [layer for layer in self if isinstance(layer, nn.Linear)]

    def numpy_forward(self) -> NumpyFunction:
        """This stack as a numpy function over views of its weights, for inference at one env step."""
        kinds = {type(layer) for layer in self if not isinstance(layer, nn.Linear)}
        numpy_activations = {module: function for module, _, function in ACTIVATIONS.values() if function is not None}
        if len(kinds) > 1 or not kinds <= numpy_activations.keys() or not isinstance(self[-1], nn.Linear):
            raise ValueError("a numpy forward needs Linear layers with one of relu or tanh between them, "
                             f"and a Linear last: {self}")
        return numpy_layers(self.linears, numpy_activations[kinds.pop()] if kinds else numpy_relu)


def mlp(widths: Sequence[int], activation: str = "relu", *, layer_norm: bool = False,
        activate_output: bool = False, orthogonal_gain: float | None = None) -> MLP:
    """Linear layers through ``widths``, each but the last followed by a LayerNorm (if
    ``layer_norm``) and the ``activation``; the last one too if ``activate_output``.

    ``orthogonal_gain``: CleanRL's initialisation (orthogonal weights of gain sqrt(2), this gain
    for the last layer, zero biases) instead of PyTorch's default.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    module = ACTIVATIONS[activation][0]
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(widths))
    for i, (inputs, outputs) in enumerate(pairs):
        layers.append(nn.Linear(inputs, outputs))
        if i < len(pairs) - 1 or activate_output:
            layers += [nn.LayerNorm(outputs)] if layer_norm else []
            layers.append(module())
    stack = MLP(*layers)
    if orthogonal_gain is not None:
        orthogonal_init(stack.linears, orthogonal_gain)
    return stack


def orthogonal_init(linears: Sequence[nn.Linear], out_gain: float) -> None:
    """CleanRL's scheme: orthogonal weights of gain sqrt(2), ``out_gain`` for the last layer, zero biases."""
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, out_gain if i == len(linears) - 1 else math.sqrt(2))
        nn.init.zeros_(layer.bias)


def numpy_layers(layers: Sequence[nn.Linear], activation: NumpyFunction) -> NumpyFunction:
    """Linear ``layers`` with ``activation`` between them, as a numpy function over views of
    their weights (no copies: it sees the weights as the optimizer leaves them). For one row at a
    time numpy costs a fraction of what torch does per call. Inference only."""
    weights = [(layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in layers]
    *hidden, (last_weight, last_bias) = weights

    def forward(x: np.ndarray) -> np.ndarray:
        for weight, bias in hidden:
            x = activation(x @ weight + bias)
        return x @ last_weight + last_bias

    return forward
