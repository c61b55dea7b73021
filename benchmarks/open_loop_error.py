"""Open-loop prediction error, 1 to 50 steps, of every state world model on the same held-out data.

Each model trains on the same random-policy dm-control episodes; on a held-out episode, from
starts every ``--stride`` steps, it filters ``--context`` real observations, then imagines
``--horizon`` steps with the real actions (its likeliest step: temperature 0) and decodes each
imagined state. The error at step k is the squared difference from the real observation,
per dimension, in units of each dimension's variance (1 = no better than the mean state), beside
the error of predicting that nothing moves (the last filtered observation, repeated).

    python benchmarks/open_loop_error.py                       # ~10 min on 2 busy cores
    python benchmarks/open_loop_error.py --train_steps=5000    # longer training, better models

Writes benchmarks/results/open_loop_error.json and open_loop_error.png. The VAE + MDN-RNN is not
here: it models pixels, and these are states.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.data import EpisodeStore, collect
from worldkit.data.datasets import SequenceDataset, TransitionDataset
from worldkit.dream.open_loop import open_loop_error
from worldkit.models import RSSM, LatentMLPWorldModel
from worldkit.models.ensemble import TRANSITION_KEYS, DynamicsEnsemble
from worldkit.plots import learning_curves

HERE = Path(__file__).resolve().parent


def batches(dataset, batch_size: int, rng: np.random.Generator, keys: tuple[str, ...]):
    while True:
        items = [dataset[int(i)] for i in rng.integers(len(dataset), size=batch_size)]
        yield {key: torch.stack([item[key] for item in items]) for key in keys}


def train_rssm(store: EpisodeStore, train: np.ndarray, args) -> RSSM:
    model = RSSM(store.observation_space, store.action_space, size=args.size, lr=3e-4)
    optimizer = model.configure_optimizers()
    data = batches(SequenceDataset(store, 32, episodes=train), 16, np.random.default_rng(0),
                   ("obs", "action", "reward", "terminated", "mask"))
    for _ in range(args.train_steps):
        loss = model.losses(next(data))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def train_mlp(store: EpisodeStore, train: np.ndarray, args) -> LatentMLPWorldModel:
    obs_dim, action_dim = store.observation_space.shape[0], store.action_space.shape[0]
    model = LatentMLPWorldModel(obs_dim, action_dim, heads=True, action_space=store.action_space)
    model.set_normalizer(torch.as_tensor(np.concatenate([store.episode(int(i))["obs"] for i in train])))
    optimizer = model.configure_optimizers()
    data = batches(TransitionDataset(store, episodes=train), 256, np.random.default_rng(0),
                   ("obs", "action", "next_obs", "reward", "terminated"))
    for _ in range(args.train_steps):
        batch = next(data)
        loss = model.losses(batch["obs"], batch["action"], batch["next_obs"], batch["reward"], batch["terminated"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def train_ensemble(store: EpisodeStore, train: np.ndarray, args) -> DynamicsEnsemble:
    """MBPPO's dynamics ensemble (5 members), each member on its own minibatches, as MBPPO trains it."""
    data = TransitionDataset(store, episodes=train)
    items = [data[i] for i in range(len(data))]
    transitions = {key: torch.stack([item[key] for item in items]) for key in TRANSITION_KEYS}
    model = DynamicsEnsemble(store.observation_space, store.action_space)
    model.set_normalizer(transitions["obs"], transitions["action"], transitions["reward"], transitions["next_obs"])
    optimizer = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    for _ in range(args.train_steps):
        index = torch.randint(len(items), (model.ensemble_size, 256), generator=generator)
        loss = model.losses({key: value[index] for key, value in transitions.items()})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dmc:walker-walk")
    parser.add_argument("--episodes", type=int, default=6, help="collected episodes; the last is held out")
    parser.add_argument("--train_steps", type=int, default=1500)
    parser.add_argument("--size", default="XS", help="RSSM size preset")
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--context", type=int, default=5)
    parser.add_argument("--stride", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    store = collect(HERE / "runs" / "open_loop" / args.env.replace(":", "-"), args.env, episodes=args.episodes,
                    seed=0, progress=False)
    train, held_out = np.arange(len(store) - 1), store.episode(len(store) - 1)
    scale = np.concatenate([store.episode(int(i))["obs"] for i in train]).std(0) + 1e-6
    starts = np.arange(args.context, len(held_out["action"]) - args.horizon, args.stride)
    curves, seconds = {}, {}
    for name, fit in (("RSSM " + args.size, train_rssm), ("LatentMLP (heads)", train_mlp),
                      ("dynamics ensemble (5)", train_ensemble)):
        start = time.perf_counter()
        model = fit(store, train, args)
        seconds[name] = time.perf_counter() - start
        curves[name], still = open_loop_error(model, [held_out], scale, context=args.context, horizon=args.horizon,
                                              stride=args.stride)
    curves["nothing moves (baseline)"] = still
    steps = np.arange(1, args.horizon + 1)
    learning_curves({name: [(steps, curve)] for name, curve in curves.items()}, HERE / "results" / "open_loop_error.png",
                    title=f"open-loop error on a held-out {args.env} episode ({args.train_steps} training steps)",
                    ylabel="squared error / variance, per dimension", xlabel="steps ahead")
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "args": vars(args),
              "load_average_at_end": os.getloadavg(), "starts": len(starts), "training_seconds": seconds,
              "curves": {name: curve.round(4).tolist() for name, curve in curves.items()}}
    (HERE / "results" / "open_loop_error.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| model | 1 step | 10 steps | 25 steps | 50 steps |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, curve in curves.items():
        picks = [curve[k - 1] for k in (1, 10, 25, 50) if k <= len(curve)]
        print(f"| {name} | " + " | ".join(f"{value:.3f}" for value in picks) + " |")


if __name__ == "__main__":
    main()
