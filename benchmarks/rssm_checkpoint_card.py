"""Train the RSSM of checkpoints/dmc-walker-rssm standalone and ship it with a measured card.

    python benchmarks/rssm_checkpoint_card.py                  # XS, 40 random episodes, 3,000 steps
    python benchmarks/rssm_checkpoint_card.py --store=runs/dreamer_dmc_walker/replay   # a Dreamer run's data

The model trains as any worldkit world model does on stored data: ``lightning.Trainer`` over a
``SequenceDataModule`` of an ``EpisodeStore``. Its card reports the open-loop error on episodes
it never saw (collected with another seed): from each start it filters ``context`` real
observations, then imagines ``horizon`` steps with the real actions (its likeliest step) and
decodes them; the error is the squared difference from the real state per dimension in units of
that dimension's variance, beside the error of "nothing moves" (the last real observation
repeated). ``open_loop.png`` in the checkpoint shows real against imagined states over 50 steps.
``tests/test_shipped_checkpoints.py`` measures the error again on other fresh episodes.
"""

import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import torch

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.checkpoints import save_pretrained
from worldkit.config import parse_config
from worldkit.data import EpisodeStore, SequenceDataModule, collect
from worldkit.dream.open_loop import open_loop, open_loop_error
from worldkit.models import RSSM
from worldkit.plots import open_loop_states
from worldkit.training import TrainerConfig, make_trainer

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "runs" / "rssm_card"
# walker-walk's state as the env flattens it: height, 14 orientations (xz of 7 bodies), 9 velocities.
SHOWN = {"torso height": 0, "torso orientation": 1, "right thigh orientation": 3, "forward velocity": 16}


@dataclass
class Config:
    name: str = "dmc-walker-rssm"
    env: str = "dmc:walker-walk"
    store: str | None = None
    """an EpisodeStore to train on; by default, ``episodes`` random-policy episodes collected with seed 0"""
    episodes: int = 40
    size: str = "XS"
    sequence_length: int = 64
    batch_size: int = 16
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=3000, val_check_interval=1000))
    trained: str | None = None
    """a checkpoint of :func:`train`'s result (e.g. made on a GPU machine) to measure and ship instead of training"""
    trained_on: str = "this machine's CPU"
    """where the model trained, for the card"""
    eval_episodes: int = 5
    """fresh random-policy episodes (seed ``eval_seed``) the card's error is measured on"""
    eval_seed: int = 777
    context: int = 5
    horizon: int = 50
    stride: int = 10


def train(config: Config, store: EpisodeStore, run_dir: Path) -> RSSM:
    """The standalone path: lightning.Trainer over a SequenceDataModule of the store."""
    model = RSSM(store.observation_space, store.action_space, size=config.size, lr=3e-4)
    model.env_spec = store.env_spec
    data = SequenceDataModule(store, config.sequence_length, batch_size=config.batch_size, seed=0)
    make_trainer(config.trainer, run_dir, wandb_mode="disabled").fit(model, data)
    return model


def picture(model: RSSM, episode: dict, config: Config, path: Path) -> None:
    # from step 300: random play knocks the walker over within ~20 steps, so most of what the
    # model saw (and what the card's error averages over) is the walker kicking on the ground
    episode = {key: value[300 - config.context:] for key, value in episode.items()}
    imagined, real, _ = open_loop(model, episode, context=config.context, horizon=config.horizon, stride=10**9)
    open_loop_states(real[0], imagined[0], path, dimensions=SHOWN,
                     title=f"{config.name}: open loop after {config.context} real steps (from step 300 of a fresh "
                           "random-policy episode), real actions")


def main(config: Config) -> dict:
    torch.manual_seed(0)
    store = EpisodeStore(config.store) if config.store else collect(
        WORK / "store", config.env, episodes=config.episodes, seed=0, progress=True)
    fresh = collect(WORK / f"fresh-seed{config.eval_seed}", config.env, episodes=config.eval_episodes,
                    seed=config.eval_seed, progress=False)
    model = RSSM.from_pretrained(config.trained) if config.trained else train(config, store, WORK / "trainer")
    model = model.cpu().eval()

    episodes = [fresh.episode(i) for i in range(len(fresh))]
    scale = np.concatenate([episode["obs"] for episode in episodes]).std(0) + 1e-6  # the test measures the same way
    errors, still = open_loop_error(model, episodes, scale, context=config.context, horizon=config.horizon,
                                    stride=config.stride)
    picks = {k: (float(errors[k - 1]), float(still[k - 1])) for k in (1, 10, 25, 50) if k <= config.horizon}
    metrics = {
        **{f"open_loop_error_{k}": round(m, 4) for k, (m, _) in picks.items()},
        **{f"nothing_moves_error_{k}": round(s, 4) for k, (_, s) in picks.items()},
        "training_steps": config.trainer.max_steps, "training_episodes": len(store),
        "training_env_steps": int(store.num_steps), "eval_episodes": config.eval_episodes,
        "eval_seed": config.eval_seed, "context": config.context, "horizon": config.horizon, "stride": config.stride,
    }
    out = ROOT / "checkpoints" / config.name
    script = Path(sys.argv[0]).relative_to(ROOT) if Path(sys.argv[0]).is_absolute() else sys.argv[0]
    # the command that trains the same model (--trained only saves rerunning it here)
    command = " ".join(["python", str(script), *(arg for arg in sys.argv[1:] if not arg.startswith("--trained"))])
    rows = "\n".join(f"| {k} | {m:.3f} | {s:.3f} |" for k, (m, s) in picks.items())
    card = f"""# {config.name}

A Dreamer V3 RSSM (size {config.size}: 256-unit GRU, 32 x 32 categorical latent) of {store.env_spec}
from its state vector, trained standalone with `lightning.Trainer` on {len(store)} episodes
({int(store.num_steps):,} steps) of {"the store " + config.store if config.store else "a uniformly random policy"}.
It is a model of the walker's dynamics under such actions, not the world model of a trained
Dreamer agent: a 100k-step Dreamer run at this size needs a GPU (see docs/benchmarks.md).

| | |
| --- | --- |
| trained by | `{command}` |
| optimiser steps | {config.trainer.max_steps:,} (batches of {config.batch_size} x {config.sequence_length} steps), on {config.trained_on} |
| date | {date.today().isoformat()} |

Open-loop error on {config.eval_episodes} fresh random-policy episodes (seed {config.eval_seed}), after
{config.context} filtered real steps, with the real actions; squared error per dimension in
units of its variance:

| steps ahead | this model | nothing moves |
| ---: | ---: | ---: |
{rows}

![open loop](open_loop.png)

```python
from worldkit.models import RSSM
from worldkit.plots import open_loop_states
model = RSSM.from_pretrained("{config.name}")
state = model.observe(model.initial_state(1), None, obs[None])        # raw state vectors
state, reward, continues = model.imagine(state, action[None], temperature=0.0)
```
"""
    save_pretrained(model, out, metrics=metrics, command=command, card=card)
    picture(model, episodes[0], config, out / "open_loop.png")
    print(card)
    return metrics


if __name__ == "__main__":
    main(parse_config(Config))
