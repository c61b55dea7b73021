"""Open-loop prediction: how far a world model's imagination stays with the real episode.

From a start, the model filters a few real observations, then imagines with the episode's real
actions and decodes each imagined state. Compared with the real observations, this is the
multi-step prediction error that a dream's quality rests on (and what Dreamer papers plot).
"""

import numpy as np
import torch

from worldkit.models.protocol import WorldModel


@torch.no_grad()
def open_loop(model: WorldModel, episode: dict[str, np.ndarray], *, context: int = 5, horizon: int = 50,
              stride: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imagined against real observations from every ``stride``-th start of ``episode``.

    The model observes ``context + 1`` real observations ending at the start, then imagines
    ``horizon`` steps with the real actions at temperature 0 (its likeliest step).

    Returns:
        ``(imagined, real, last)``: decoded imagined and real observations, each
        ``(starts, horizon, *obs_shape)``, and the last real observation seen, ``(starts, *obs_shape)``.
        Real frames (uint8) come back in [0, 1], the scale decoders draw on.
    """
    if len(episode["action"]) < context + horizon + 1:
        raise ValueError(f"the episode has {len(episode['action'])} steps; context {context} + horizon {horizon} "
                         "needs more")
    obs, actions = torch.as_tensor(episode["obs"]), torch.as_tensor(episode["action"])  # frames stay uint8
    actions = actions.float() if actions.is_floating_point() else actions
    starts = np.arange(context, len(episode["action"]) - horizon, stride)
    first = starts - context
    state = model.observe(model.initial_state(len(starts)), None, obs[first])
    for k in range(1, context + 1):
        state = model.observe(state, actions[first + k - 1], obs[first + k])
    imagined = []
    for k in range(horizon):
        state, _, _ = model.imagine(state, actions[starts + k], temperature=0.0)
        imagined.append(model.decode(state).cpu().numpy())
    real = np.stack([episode["obs"][starts + k + 1] for k in range(horizon)], axis=1)
    last = episode["obs"][starts]
    if episode["obs"].dtype == np.uint8:
        real, last = real.astype(np.float32) / 255, last.astype(np.float32) / 255
    return np.stack(imagined, axis=1), real, last


def open_loop_error(model: WorldModel, episodes: list[dict[str, np.ndarray]], scale: np.ndarray, **kwargs
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-step squared error, per dimension (state entry or pixel channel) in units of ``scale``
    (e.g. the data's std; frames are on [0, 1]), averaged over starts, dimensions and episodes: the
    model's, and that of "nothing moves" (the last real observation repeated), each ``(horizon,)``.
    ``kwargs`` go to :func:`open_loop`."""
    model_errors, still_errors = [], []
    for episode in episodes:
        imagined, real, last = open_loop(model, episode, **kwargs)
        all_but_horizon = (0, *range(2, real.ndim))
        model_errors.append((((imagined - real) / scale) ** 2).mean(axis=all_but_horizon))
        still_errors.append((((last[:, None] - real) / scale) ** 2).mean(axis=all_but_horizon))
    return np.mean(model_errors, 0), np.mean(still_errors, 0)


def open_loop_picture(model: WorldModel, episode: dict[str, np.ndarray], path, *, context: int = 5,
                      horizon: int = 50) -> bool:
    """Draw real against imagined over ``horizon`` steps after filtering ``context`` real ones:
    frames for a pixel model, the first state dimensions otherwise. False (nothing drawn) when the
    episode is too short or its observations are a dict."""
    from worldkit.plots import filmstrip, open_loop_states

    if len(episode["action"]) <= context + horizon or isinstance(episode["obs"], dict):
        return False  # too short, or a Dict observation (no one picture shows all its parts)
    imagined, real, _ = open_loop(model, episode, context=context, horizon=horizon, stride=10**9)
    imagined, real = imagined[0], real[0]
    if getattr(model, "pixels", False):
        picks = np.arange(0, horizon, 10)
        frames = [(frame * 255).round().astype(np.uint8) for frame in [*real[picks], *imagined[picks]]]
        filmstrip(frames, path, title=f"open loop, every 10th of {horizon} steps: real (left {len(picks)}), "
                                      f"imagined (right {len(picks)})")
    else:
        open_loop_states(real, imagined, path, dimensions={f"state[{dim}]": dim for dim in range(min(4, real.shape[-1]))},
                         title=f"open-loop prediction, {horizon} steps after {context} filtered, real actions")
    return True
