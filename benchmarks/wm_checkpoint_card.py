"""Ship a world model from a finished WM-PPO run as checkpoints/<name>/, with a measured model card.

    python benchmarks/wm_checkpoint_card.py --run=benchmarks/runs/wm_ppo/Walker2d-v4-wm_ppo-seed1 --name=walker2d-wm

The card's metric is the one-step latent prediction error relative to predicting no change
(`LatentMLPWorldModel.one_step_error`), on fresh random-policy episodes collected here with a
fixed seed; tests/test_shipped_checkpoints.py measures it again on other fresh episodes.
"""

import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from safetensors.torch import load_file

from worldkit.checkpoints import save_pretrained
from worldkit.config import parse_config
from worldkit.data import TransitionDataset, collect
from worldkit.models import LatentMLPWorldModel

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    run: str
    """a finished recipes/wm_ppo_walker.py run folder (with checkpoints/world_model and policy)"""
    name: str = "walker2d-wm"
    steps: int = 5_000
    """fresh random-policy transitions to measure on"""
    seed: int = 0


def fresh_transitions(env: str, steps: int, seed: int) -> dict[str, torch.Tensor]:
    """Random-policy transitions of ``env``, collected now (never seen in training)."""
    with tempfile.TemporaryDirectory() as store:
        collect(store, env, steps=steps, seed=seed, progress=False)
        dataset = TransitionDataset(store)
        items = [dataset[i] for i in range(len(dataset))]
    return {key: torch.stack([item[key] for item in items]) for key in ("obs", "action", "next_obs")}


def load_run_world_model(run: Path) -> LatentMLPWorldModel:
    """The run's world model, taking raw observations (PPO's statistics folded in)."""
    model = LatentMLPWorldModel.from_pretrained(run / "checkpoints" / "world_model")
    policy = load_file(run / "checkpoints" / "policy" / "model.safetensors")
    model.set_normalizer_stats(policy["obs_rms.mean"].float(), (policy["obs_rms.var"] + 1e-8).sqrt().float())
    return model


def main(config: Config) -> dict:
    run = Path(config.run)
    summary = json.loads((run / "summary.json").read_text())
    run_config = json.loads((run / "config.json").read_text())
    model = load_run_world_model(run)
    env = model.env_spec = summary["env"]
    data = fresh_transitions(env, config.steps, config.seed)
    error = model.one_step_error(data["obs"], data["action"], data["next_obs"])
    metrics = {"one_step_relative_latent_error": error, "measured_on": f"{config.steps} random-policy steps of {env}, seed {config.seed}",
               "ppo_final_train_return_last100": summary["final_train_return_last100"],
               "ppo_final_eval_return": summary["final_eval_return"], "env_steps": summary["steps"]}
    command = (f"python recipes/wm_ppo_walker.py --env={run_config['env']} --method=wm_ppo "
               f"--seeds {summary['seed']} --total_steps={run_config['total_steps']} "
               f"--latent_dim={run_config['latent_dim']} --alpha={run_config['alpha']} --beta={run_config['beta']}")
    card = f"""# {config.name}

The lightweight world model of world-model-assisted PPO (seed 000), trained inside PPO on {env}.
It takes raw observations (PPO's observation statistics are folded into its normaliser).

| | |
| --- | --- |
| trained by | `{command}` |
| env steps | {summary['steps']:,} |
| latent size | {run_config['latent_dim']} |
| PPO return at the end (last 100 training episodes / deterministic eval) | {summary['final_train_return_last100']:,.0f} / {summary['final_eval_return']:,.0f} |
| one-step latent error relative to "no change" | {error:.4f} (on {config.steps:,} fresh random-policy steps, seed {config.seed}) |
| date | {date.today().isoformat()} |

```python
from worldkit.models import LatentMLPWorldModel
model = LatentMLPWorldModel.from_pretrained("{config.name}")
z = model.encode(observations)              # raw {env} observations
z_next = model.predict_next(z, actions)
```
"""
    save_pretrained(model, ROOT / "checkpoints" / config.name, metrics=metrics, command=command, card=card)
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main(parse_config(Config))
