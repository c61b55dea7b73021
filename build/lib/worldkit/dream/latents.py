"""Stored episodes seen through a VAE: the latent sequences M trains on, and where dreams start.

Encoding once and keeping (mu, log sigma^2) per frame turns gigabytes of frames into megabytes
of latents, so M trains from memory and can draw a fresh z from each posterior every epoch.
"""

import os
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from worldkit.data import EpisodeStore, split_episodes
from worldkit.files import atomic_write
from worldkit.models.vae import ConvVAE

KEYS = ("mu", "logvar", "action", "reward", "terminated")


class LatentEpisodes:
    """Per-episode arrays: ``mu``, ``logvar`` (T+1, Z) and ``action``, ``reward``, ``terminated`` (T,)."""

    def __init__(self, episodes: list[dict[str, np.ndarray]], env_spec: str):
        self.episodes, self.env_spec = episodes, env_spec

    @classmethod
    @torch.no_grad()
    def encode(cls, vae: ConvVAE, store: "EpisodeStore | str | os.PathLike", *, batch_size: int = 512,
               progress: bool = True) -> "LatentEpisodes":
        """Encode every frame of a store with ``vae``, ``batch_size`` frames at a time."""
        store = store if isinstance(store, EpisodeStore) else EpisodeStore(store)
        vae.check_frames(torch.from_numpy(np.zeros(store.observation_space.shape, dtype=np.uint8)))
        episodes = []
        for episode in tqdm(store, total=len(store), desc="encode frames", unit="episode", disable=not progress):
            frames = torch.from_numpy(episode["obs"]).to(vae.device)
            mu, logvar = zip(*(vae.encode(chunk) for chunk in frames.split(batch_size)))
            episodes.append({
                "mu": torch.cat(mu).cpu().numpy(), "logvar": torch.cat(logvar).cpu().numpy(),
                "action": episode["action"].astype(np.int64), "reward": episode["reward"],
                "terminated": episode["terminated"],
            })
        return cls(episodes, store.env_spec)

    def __len__(self) -> int:
        return len(self.episodes)

    def first_latents(self) -> torch.Tensor:
        """z (posterior mean) of every episode's first frame (N, Z): where dreams start."""
        return torch.from_numpy(np.stack([e["mu"][0] for e in self.episodes]))

    def save(self, path: "str | os.PathLike") -> Path:
        """One ``.npz`` of the concatenated arrays and the episode lengths (no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {key: np.concatenate([e[key] for e in self.episodes]) for key in KEYS}
        lengths = np.array([len(e["action"]) for e in self.episodes])
        atomic_write(path, lambda file: np.savez(file, lengths=lengths, env_spec=np.array(self.env_spec), **arrays))
        return path

    @classmethod
    def load(cls, path: "str | os.PathLike") -> "LatentEpisodes":
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            arrays, lengths, env_spec = {key: data[key] for key in KEYS}, data["lengths"], str(data["env_spec"])
        frame_ends, step_ends = np.cumsum(lengths + 1)[:-1], np.cumsum(lengths)[:-1]
        split = {key: np.split(arrays[key], frame_ends if key in ("mu", "logvar") else step_ends) for key in KEYS}
        return cls([{key: split[key][i] for key in KEYS} for i in range(len(lengths))], env_spec)


class LatentWindows(Dataset):
    """Each episode cut into consecutive windows of ``length`` steps from its start, the last one
    zero-padded (``mask`` marks real steps). Windows from an episode's start match a dream, which
    starts M's state from zero at a first frame."""

    def __init__(self, latents: LatentEpisodes, length: int, episodes: np.ndarray):
        self.latents, self.length = latents, length
        self.index = [(e, start) for e in episodes for start in range(0, len(latents.episodes[e]["action"]), length)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        episode, start = self.index[i]
        data = self.latents.episodes[episode]
        size = min(self.length, len(data["action"]) - start)
        window = {key: _padded(data[key][start : start + size + 1], self.length + 1) for key in ("mu", "logvar")}
        for key in ("action", "reward", "terminated"):
            window[key] = _padded(data[key][start : start + size], self.length)
        window["mask"] = np.arange(self.length) < size
        return {key: torch.from_numpy(value) for key, value in window.items()}


class LatentSequenceDataModule(L.LightningDataModule):
    """Windows of latent episodes for M, split by episode as :func:`worldkit.data.split_episodes` does.

    Args:
        latents: the encoded episodes.
        sequence_length: steps per window.
        batch_size: windows per batch.
        val_fraction: share of episodes held out.
        seed: fixes the split and the shuffling.
    """

    def __init__(self, latents: LatentEpisodes, sequence_length: int = 64, *, batch_size: int = 32,
                 val_fraction: float = 0.1, seed: int = 0):
        super().__init__()
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be at least 1, got {sequence_length}")
        self.latents, self.sequence_length, self.batch_size, self.seed = latents, sequence_length, batch_size, seed
        self.train_episodes, self.val_episodes = split_episodes(len(latents), val_fraction, seed)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        dataset = LatentWindows(self.latents, self.sequence_length, self.train_episodes)
        # One batch size throughout: on CPU, every change of shape rebuilds oneDNN's LSTM kernels (~10x a step).
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, generator=generator,
                          drop_last=len(dataset) >= self.batch_size)

    def val_dataloader(self) -> DataLoader | list:
        if not len(self.val_episodes):
            return []
        return DataLoader(LatentWindows(self.latents, self.sequence_length, self.val_episodes), self.batch_size)


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out
