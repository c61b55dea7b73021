"""Open-loop prediction error, 1 to 50 steps, of every world model on the same held-out data.

Each model trains on the same random-policy episodes; on held-out episodes, from starts every
``--stride`` steps, it filters ``--context`` real observations, then imagines ``--horizon`` steps
with the real actions (its likeliest step: temperature 0) and decodes each imagined state. The
error at step k is the squared difference from the real observation, per dimension, in units of
the data's variance (1 = no better than the mean observation), beside the error of predicting
that nothing moves (the last filtered observation, repeated). Held-out episodes shorter than
context + horizon are skipped; if none is long enough, it says so before training.

Two kinds of data, two plots. States (dm-control walker-walk): the RSSM, the MLP model of
world-model-assisted PPO and MBPPO's dynamics ensemble. Pixels (MiniWorld Sidewalk, 64x64 frames,
the env World Models runs on): the RSSM with its CNN, and World Models' VAE + MDN-RNN, whose M
takes Discrete actions only. The RSSM is in both.

    python benchmarks/open_loop_error.py                       # states, ~15 min on 2 busy cores
    python benchmarks/open_loop_error.py --obs=pixels --train_steps=500   # pixels, ~25 min on one core
    python benchmarks/open_loop_error.py --train_steps=5000    # longer training, better models

Writes benchmarks/results/open_loop_error{_pixels}.json; ``python benchmarks/report.py`` draws
docs/img/open_loop_error{_pixels}.png from it.
"""

import argparse
import json
import os
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from common import provenance
from torch.utils.data import DataLoader

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.data import EpisodeStore, collect
from worldkit.data.datasets import SequenceDataset, TransitionDataset
from worldkit.dream.latents import LatentEpisodes, LatentWindows
from worldkit.dream.open_loop import open_loop_error
from worldkit.models import RSSM, LatentMLPWorldModel
from worldkit.models.ensemble import TRANSITION_KEYS, DynamicsEnsemble
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel

HERE = Path(__file__).resolve().parent
SETTINGS = {  # per kind of observation: the env, episodes collected, how many of the last are held out
    "state": {"env": "dmc:walker-walk", "episodes": 6, "held_out": 1},
    "pixels": {"env": "miniworld:Sidewalk", "episodes": 30, "held_out": 5},
}


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


def fit(module: L.LightningModule, loader: DataLoader, steps: int) -> None:
    """``steps`` optimiser steps through lightning.Trainer, so the module's own training_step runs
    (the VAE's KL warm-up, M's reward range and gradient clipping)."""
    L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, accelerator="cpu").fit(module, loader)


def train_vae_mdnrnn(store: EpisodeStore, train: np.ndarray, args) -> VAEMDNWorldModel:
    """World Models' V on single frames, then M on V's latents of the same episodes (whole
    episodes, as the Sidewalk recipe trains it), ``train_steps`` each at the recipe's batch sizes."""
    vae = ConvVAE(store.observation_space.shape, latent_dim=32, diagnostics_every=0)
    fit(vae, DataLoader(TransitionDataset(store, episodes=train), batch_size=64, shuffle=True), args.train_steps)
    latents = LatentEpisodes.encode(vae.eval(), store, progress=False)
    length = max(len(store.episode(int(i))["action"]) for i in train)
    mdnrnn = MDNRNN(32, int(store.action_space.n))
    fit(mdnrnn, DataLoader(LatentWindows(latents, length, train), batch_size=16, shuffle=True), args.train_steps)
    return VAEMDNWorldModel.compose(vae, mdnrnn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obs", choices=sorted(SETTINGS), default="state")
    parser.add_argument("--env", help="default: walker-walk for states, Sidewalk for pixels")
    parser.add_argument("--episodes", type=int, help="collected episodes (default: 6 of states, 30 of pixels)")
    parser.add_argument("--held_out", type=int, help="the last this many episodes are held out (1 / 5)")
    parser.add_argument("--frame_size", type=int, default=64, help="height and width of pixel frames")
    parser.add_argument("--train_steps", type=int, default=1500)
    parser.add_argument("--size", default="XS", help="RSSM size preset")
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--context", type=int, default=5)
    parser.add_argument("--stride", type=int, default=10)
    args = parser.parse_args()
    for key, value in SETTINGS[args.obs].items():
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))
    if not 0 < args.held_out < args.episodes:
        parser.error(f"--held_out must be between 1 and --episodes - 1 ({args.episodes - 1}), got {args.held_out}")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    pixels = args.obs == "pixels"
    store = collect(HERE / "runs" / "open_loop" / f"{args.env.replace(':', '-')}-{args.obs}", args.env,
                    episodes=args.episodes, seed=0, obs=args.obs,
                    size=(args.frame_size, args.frame_size) if pixels else None, progress=False)
    train = np.arange(len(store) - args.held_out)
    needed = args.context + args.horizon + 1  # an episode shorter than this has no start to measure from
    held_out = [episode for episode in (store.episode(i) for i in range(len(train), len(store)))
                if len(episode["action"]) >= needed]
    if not held_out:  # said before any model trains
        parser.error(f"no held-out episode has the {needed} steps --context + --horizon need: hold out more")
    observations = np.concatenate([store.episode(int(i))["obs"] for i in train])
    # per state dimension; for frames one number, so a pixel that never changes does not divide by 0
    scale = np.sqrt((observations / 255.0).var(0).mean()) if pixels else observations.std(0) + 1e-6
    models = [("RSSM " + args.size, train_rssm)] + (
        [("VAE + MDN-RNN", train_vae_mdnrnn)] if pixels else
        [("LatentMLP (heads)", train_mlp), ("dynamics ensemble (5)", train_ensemble)])
    curves, seconds = {}, {}
    for name, fit_model in models:
        start = time.perf_counter()
        model = fit_model(store, train, args)
        seconds[name] = time.perf_counter() - start
        curves[name], still = open_loop_error(model, held_out, scale, context=args.context, horizon=args.horizon,
                                              stride=args.stride)
    curves["nothing moves (baseline)"] = still
    suffix = "_pixels" if pixels else ""
    starts = sum(len(range(args.context, len(e["action"]) - args.horizon, args.stride)) for e in held_out)
    report = {**provenance(), "args": vars(args),
              "load_average_at_end": os.getloadavg(), "held_out_episodes_long_enough": len(held_out), "starts": starts, "training_seconds": seconds,
              "curves": {name: curve.round(4).tolist() for name, curve in curves.items()}}
    (HERE / "results" / f"open_loop_error{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| model | 1 step | 10 steps | 25 steps | 50 steps |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, curve in curves.items():
        picks = [curve[k - 1] for k in (1, 10, 25, 50) if k <= len(curve)]
        print(f"| {name} | " + " | ".join(f"{value:.3f}" for value in picks) + " |")


if __name__ == "__main__":
    main()
