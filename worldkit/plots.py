"""Pictures of results: learning curves, filmstrips, latent maps, open-loop predictions. Each
function writes one PNG."""

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np


def learning_curves(curves: Mapping[str, Sequence[tuple[Sequence[float], Sequence[float]]]], path: str | Path,
                    *, title: str = "", ylabel: str = "episodic return", xlabel: str = "env steps") -> Path:
    """One line per method: the mean over seeds with a 95% bootstrap confidence band.

    ``curves[method]`` is a list of (steps, values) pairs, one per seed; seeds are put on a
    common grid by linear interpolation. The band resamples seeds (percentile bootstrap of the
    mean, a fixed generator so a figure redraws the same): with 3 to 5 seeds a normal band from
    the standard error would be too narrow.
    """
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for method, runs in curves.items():
        runs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
        if not runs:
            continue
        grid = np.linspace(max(x[0] for x, _ in runs), min(x[-1] for x, _ in runs), 200)
        values = np.stack([np.interp(grid, x, y) for x, y in runs])
        mean = values.mean(0)
        [line] = axes.plot(grid, mean, label=f"{method} ({len(runs)} seed{'s' * (len(runs) > 1)})")
        if len(runs) > 1:
            low, high = bootstrap_band(values)
            axes.fill_between(grid, low, high, alpha=0.2, color=line.get_color())
    axes.set(xlabel=xlabel, ylabel=ylabel)
    axes.set_title(textwrap.fill(title, 70), fontsize="medium")  # long titles wrap instead of running off
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def bootstrap_band(values: np.ndarray, *, reps: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 95% percentile-bootstrap interval of the mean over seeds (rows of ``values``), per column."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(reps, len(values)))
    means = values[picks].mean(1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def filmstrip(frames: Sequence[np.ndarray], path: str | Path, *, title: str = "") -> Path:
    """Frames (uint8 HWC) side by side in one row."""
    figure, axes = plt.subplots(1, len(frames), figsize=(1.6 * len(frames), 2.0))
    for ax, frame in zip(np.atleast_1d(axes), frames):
        ax.imshow(frame)
        ax.axis("off")
    figure.suptitle(title)
    return _save(figure, path)


def latent_map(points: np.ndarray, colour: np.ndarray, path: str | Path, *, title: str = "",
               colour_label: str = "", cyclic: bool = False) -> Path:
    """A 2-D embedding of latents (e.g. t-SNE), coloured by a physical quantity."""
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    scatter = axes.scatter(points[:, 0], points[:, 1], c=colour, s=6, cmap="twilight" if cyclic else "viridis")
    figure.colorbar(scatter, label=colour_label)
    axes.set(title=title, xticks=[], yticks=[])
    return _save(figure, path)


def open_loop_states(real: np.ndarray, imagined: np.ndarray, path: str | Path, *,
                     dimensions: Mapping[str, int], title: str = "") -> Path:
    """Real against imagined state vectors, ``(steps, obs_dim)`` each, one panel per named dimension."""
    figure, axes = plt.subplots(1, len(dimensions), figsize=(3.6 * len(dimensions), 3.0), squeeze=False)
    steps = np.arange(1, len(real) + 1)
    for axis, (label, index) in zip(axes[0], dimensions.items()):
        axis.plot(steps, real[:, index], color="black", label="real")
        axis.plot(steps, imagined[:, index], color="tab:orange", linestyle="--", label="imagined")
        axis.set(title=label, xlabel="steps ahead")
    axes[0, 0].legend(frameon=False)
    figure.suptitle(textwrap.fill(title, 110), fontsize="medium")
    return _save(figure, path)


def cmaes_curve(history: list[dict], path: str | Path, title: str) -> Path:
    """Best and mean candidate fitness and the distribution mean's, with sigma, per generation."""
    generation = [row["generation"] for row in history]
    figure, (returns, sigma) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in [("best", "best candidate"), ("mean", "mean of candidates"), ("mean_candidate", "search mean")]:
        returns.plot(generation, [row[key] for row in history], label=label)
    returns.set(xlabel="generation", ylabel="fitness: dreamed return (shaped, if set)", title=title)
    returns.legend()
    sigma.plot(generation, [row["sigma"] for row in history])
    sigma.set(xlabel="generation", ylabel="sigma", yscale="log", title="CMA-ES step size")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def frame_grid(rows: Sequence[np.ndarray], path: str | Path, *, upscale: int = 3) -> Path:
    """Rows of uint8 frames (each (N, H, W, C)) as one enlarged image (PNG or JPEG, by ``path``)."""
    import imageio.v2 as imageio

    imageio.imwrite(path, _upscale(np.concatenate([np.concatenate(list(row), axis=1) for row in rows]), upscale))
    return Path(path)


def side_by_side_gif(left: Sequence[np.ndarray], right: Sequence[np.ndarray], path: str | Path, *,
                     upscale: int = 3, frame_ms: int = 100) -> Path:
    """An animation of two uint8 frame sequences side by side (real and dreamed, say); the right goes
    black once it ends."""
    import imageio.v2 as imageio

    frames = [_upscale(np.concatenate([frame, right[t] if t < len(right) else np.zeros_like(right[0])], axis=1),
                       upscale) for t, frame in enumerate(left)]
    imageio.mimsave(path, frames, duration=frame_ms, loop=0)
    return Path(path)


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1)
