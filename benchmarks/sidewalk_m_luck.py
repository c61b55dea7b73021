"""How much M's starting weights decide a World Models run on Sidewalk, and whether an ensemble M
whose dreams halt (``--members``) keeps a search from one M's error.

    python benchmarks/sidewalk_m_luck.py                      # seeds 1 and 0 of sidewalk_success.py
    python benchmarks/sidewalk_m_luck.py --seeds 1 --quantiles 0.99 1.0 0

For each seed, from its finished ``benchmarks/sidewalk_success.py`` run (the same V and the same
first 1,500 episodes): a second M from other starting weights (torch seed ``--init``), CMA-ES in its
dream, and CMA-ES in the dream of the ensemble of both Ms, halting where their spread exceeds each
``--quantiles`` of their spread on the real episodes (0: never halting). Every controller is scored
as the recipe's selection scores a stage: 50 real episodes from reset seeds 50,000 + 1,000·seed,
apart from the evaluation's. Also the run's own first controller, dreamed in the single M and in the
ensemble (1,024 dreams of 150 steps at the search's temperature). Each step is kept in
``<run_dir>/seed<k>-init<i>/`` and skipped when done. Writes benchmarks/results/sidewalk_m_luck.json,
keeping the rows of seeds an earlier command probed.
"""

import json
import shutil
from dataclasses import dataclass

import torch
from common import ROOT, provenance

from worldkit.checkpoints import save_pretrained
from worldkit.config import parse_config
from worldkit.controllers.cmaes import LinearController, evaluate_in_env, train_in_dream
from worldkit.dream.imagine import imagine
from worldkit.dream.latents import LatentEpisodes
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import select_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel
from worldkit.runs import world_models as recipe


@dataclass
class Config:
    seeds: tuple[int, ...] = (1, 0)
    init: int = 1234
    """torch seed of the second M's starting weights"""
    quantiles: tuple[float, ...] = (0.99,)
    """the ensemble's halt_quantile values to search with (0: its dreams never halt)"""
    source: str = "benchmarks/runs/sidewalk_success"
    run_dir: str = "benchmarks/runs/sidewalk_probe_m"


def _selection_score(world_model: VAEMDNWorldModel, controller: LinearController, settings, seed: int) -> float:
    real = evaluate_in_env(world_model, recipe._acting(controller, settings), settings.env, 50,
                           seed=recipe.SELECTION_SEEDS + 1000 * seed, workers=1, progress=False,
                           **recipe._escape(settings))
    return real["success_rate"]


def _dream_of(world_model: VAEMDNWorldModel, controller: LinearController, latents: LatentEpisodes,
              search) -> dict:
    torch.manual_seed(0)  # the controller's action samples
    starts = select_state(recipe._start_states(world_model, latents),
                          torch.randint(len(latents), (1024,), generator=torch.Generator().manual_seed(0)))
    dream = imagine(world_model, starts, controller.act, search.horizon, temperature=search.temperature,
                    generator=torch.Generator().manual_seed(1))
    return {"return": dream.returns().mean().item(), "length": dream.expected_length().mean().item()}


def probe_seed(config: Config, seed: int) -> dict:
    source = ROOT / config.source / f"seed{seed}" / f"Sidewalk-seed{seed}"
    run = ROOT / config.run_dir / f"seed{seed}-init{config.init}"
    if not (source / "selection.json").exists():
        raise SystemExit(f"{source} has no finished run: python benchmarks/sidewalk_success.py --seeds {seed}")
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    if not (run / "checkpoints" / "vae").exists():
        shutil.copytree(source / "checkpoints" / "vae", run / "checkpoints" / "vae")
        shutil.copy(source / "latents.npz", run / "latents.npz")
    torch.set_num_threads(1)
    settings = recipe.WorldModelsConfig(seeds=(seed,), progress=False, wandb_mode="disabled", run_dir=str(run.parent))
    search = recipe._search_settings(settings, seed)
    vae, latents = ConvVAE.from_pretrained(run / "checkpoints" / "vae"), LatentEpisodes.load(run / "latents.npz")
    torch.manual_seed(config.init)
    second = recipe.stage_mdnrnn(settings, vae, latents, run, seed, 3)
    if not (run / "probe.json").exists():
        controller = recipe.stage_cmaes(settings, second, recipe._start_states(second, latents), run, seed)
        (run / "probe.json").write_text(json.dumps({"success": _selection_score(second, controller, settings, seed)}))
    first = VAEMDNWorldModel.from_pretrained(source / "checkpoints" / "world_model")
    first_controller = LinearController.from_pretrained(source / "checkpoints" / "controller")
    row = {"seed": seed, "first_m": json.loads((source / "selection.json").read_text())["stages"]["."]["success_rate"],
           "second_m": json.loads((run / "probe.json").read_text())["success"],
           "first_controller_dream": {"first_m": _dream_of(first, first_controller, latents, search)},
           "ensemble": {}}
    for quantile in config.quantiles:
        folder = run / f"ensemble_q{float(quantile)}"
        ensemble = VAEMDNWorldModel.compose(vae, MDNRNN.from_pretrained(source / "checkpoints" / "mdnrnn"),
                                            MDNRNN.from_pretrained(run / "checkpoints" / "mdnrnn"))
        halt = ensemble.calibrate_halt(latents, quantile) if quantile > 0 else None
        row["first_controller_dream"][f"ensemble_q{quantile}"] = _dream_of(ensemble, first_controller, latents, search)
        if not (folder / "probe.json").exists():
            folder.mkdir(exist_ok=True)
            result = train_in_dream(ensemble, recipe._start_states(ensemble, latents), search, progress=False)
            save_pretrained(result.controller, folder / "controller")
            (folder / "probe.json").write_text(json.dumps({
                "quantile": quantile, "halt_above": halt, "search_last": result.history[-1],
                "success": _selection_score(ensemble, result.controller, settings, seed)}))
        probe = json.loads((folder / "probe.json").read_text())
        row["ensemble"][f"q{quantile}"] = {"halt_above": halt, "success": probe["success"],
                                           "searched_dream_length": probe["search_last"]["mean_candidate_length"]}
        print(f"seed {seed}: first M {row['first_m']:.0%}, second M {row['second_m']:.0%}, "
              f"ensemble (halt quantile {quantile}) {probe['success']:.0%}", flush=True)
    return row


if __name__ == "__main__":
    cfg = parse_config(Config)
    path = ROOT / "benchmarks" / "results" / "sidewalk_m_luck.json"
    rows = [probe_seed(cfg, seed) for seed in cfg.seeds]
    kept = [row for row in (json.loads(path.read_text())["per_seed"] if path.exists() else [])
            if row["seed"] not in cfg.seeds]  # seeds probed by an earlier command, credited to it
    results = {**provenance(), "protocol": "each controller in 50 real episodes from reset seeds 50,000 + 1,000·seed "
                                           "(the recipe's selection episodes); success = box reached",
               "init": cfg.init, "per_seed": sorted(kept + [{**row, "command": provenance()["command"]} for row in rows],
                                                    key=lambda row: row["seed"])}
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
