"""Ship V and M of a finished World Models run as checkpoints/sidewalk-vae/ and sidewalk-mdnrnn/,
with measured model cards.

    python benchmarks/sidewalk_checkpoint_card.py --run=runs/world_models/Sidewalk-seed0

V's card: its reconstruction error (summed squared error per frame, pixels in [0, 1]) on fresh
random-policy Sidewalk frames, beside the error of predicting their mean frame. M's card: its
negative log-likelihood of the next latent (nats per step) on the same fresh episodes encoded
by V, and how well M tells the steps that end an episode from the others. M is the run's
last round's. Both are measured here with a fixed seed;
tests/test_shipped_checkpoints.py measures them again on other fresh episodes.
"""

import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from worldkit.checkpoints import save_pretrained
from worldkit.config import parse_config
from worldkit.data import collect
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.vae import ConvVAE

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    run: str
    """a finished recipes/miniworld_cmaes.py run folder"""
    episodes: int = 30
    """fresh random-policy episodes to measure on"""
    seed: int = 0


@torch.no_grad()
def measure(vae: ConvVAE, mdnrnn: MDNRNN, episodes: int, seed: int) -> dict[str, float]:
    """V's and M's errors on fresh random-policy Sidewalk episodes (seeded, never trained on)."""
    vae, mdnrnn = vae.eval(), mdnrnn.eval()
    with tempfile.TemporaryDirectory() as folder:
        store = collect(folder, vae.env_spec, episodes=episodes, seed=seed, size=vae.frame_shape[:2], progress=False)
        frames = torch.cat([torch.from_numpy(episode["obs"]) for episode in store])
        latents = LatentEpisodes.encode(vae, store, progress=False)
    target = frames.float() / 255
    recon = torch.cat([vae.reconstruct(chunk) for chunk in frames.split(256)])
    longest = max(len(episode["action"]) for episode in latents.episodes)
    [batch] = LatentSequenceDataModule(latents, longest, batch_size=len(latents), val_fraction=0).train_dataloader()
    _, h, _ = mdnrnn(batch["mu"][:, :-1], batch["action"])
    done = torch.sigmoid(mdnrnn.outcome(h, batch["mu"][:, 1:]).done_logit)
    ends, mask = batch["terminated"], batch["mask"]
    return {
        "recon_error_per_frame": (recon - target).pow(2).flatten(1).sum(-1).mean().item(),
        "mean_frame_error_per_frame": (target - target.mean(0)).pow(2).flatten(1).sum(-1).mean().item(),
        "next_latent_nll_per_step": mdnrnn.losses(batch)["nll"].item(),
        "done_probability_at_ends": done[ends].mean().item(),
        "done_probability_elsewhere": done[mask & ~ends].mean().item(),
        "measured_on": f"{episodes} random-policy episodes of {vae.env_spec}, seed {seed}",
    }


def main(config: Config) -> None:
    run = Path(config.run)
    rounds = sorted(run.glob("round*/checkpoints/mdnrnn"), key=lambda path: int(path.parts[-3][5:]))
    mdnrnn_dir = rounds[-1] if rounds else run / "checkpoints" / "mdnrnn"
    vae, mdnrnn = ConvVAE.from_pretrained(run / "checkpoints" / "vae"), MDNRNN.from_pretrained(mdnrnn_dir)
    metrics = measure(vae, mdnrnn, config.episodes, config.seed)
    recipe = json.loads((run / "checkpoints" / "vae" / "config.json").read_text())["command"]
    today = date.today().isoformat()
    for name, module, what in (("sidewalk-vae", vae, "V, the convolutional VAE"),
                               ("sidewalk-mdnrnn", mdnrnn, "M, the MDN-RNN over V's latents")):
        card = (f"# {name}\n\n{what} of World Models on MiniWorld Sidewalk (60x80 frames, latent "
                f"{vae.hparams.latent_dim}), trained by `{recipe}` ({mdnrnn_dir} for M), shipped on {today} "
                f"by `{' '.join(['python', *sys.argv])}`.\n\nMeasured on {metrics['measured_on']}:\n\n"
                f"- V's reconstruction error: {metrics['recon_error_per_frame']:.1f} per frame (mean frame: "
                f"{metrics['mean_frame_error_per_frame']:.1f})\n"
                f"- M's NLL of the next latent: {metrics['next_latent_nll_per_step']:.1f} nats per step\n"
                f"- M's probability that a step ends the episode: {metrics['done_probability_at_ends']:.2f} at the "
                f"steps that did, {metrics['done_probability_elsewhere']:.3f} at the others\n\n"
                "What controllers trained in their dream achieve in the real env: docs/world_models.md.\n\n"
                "Load with `from worldkit.models import ConvVAE, MDNRNN`, then `ConvVAE.from_pretrained(\"sidewalk-vae\")` "
                "and `MDNRNN.from_pretrained(\"sidewalk-mdnrnn\")`; or run `python recipes/miniworld_cmaes.py --pretrained=True`.\n")
        save_pretrained(module, ROOT / "checkpoints" / name, metrics=metrics, command=recipe,
                        dtype="float16" if module is vae else "float32", card=card)
        print(f"checkpoints/{name}: {json.dumps(metrics)}")


if __name__ == "__main__":
    main(parse_config(Config))
