"""World Models on MiniWorld Sidewalk (recipes/miniworld_cmaes.py at its defaults), success rate per seed.

    python benchmarks/sidewalk_success.py                        # from scratch, seeds 0-4
    python benchmarks/sidewalk_success.py --seeds 0 1 --jobs=2   # two seeds at once, one core each
    python benchmarks/sidewalk_success.py --seeds 2 --threads=0  # one seed on every core
    python benchmarks/sidewalk_success.py --pretrained=True      # with the shipped V and M
    python benchmarks/sidewalk_success.py --members=2            # an ensemble M whose dreams halt
    python benchmarks/sidewalk_success.py --m_candidates=1       # one first M, as World Models has
    python benchmarks/sidewalk_success.py --report_only=True     # report from the runs on disk

Each seed is one recipe run in ``<run_dir>/seed<k>``, one after another; killed runs resume, and
finished ones only add the stages a newer recipe has. Protocol: the recipe's chosen controller in 100 real episodes (reset seeds
100,000 + 1,000·k), success = the box reached; the wall-clock of each seed. Writes
benchmarks/results/sidewalk_from_scratch.json (sidewalk_pretrained.json, sidewalk_from_scratch_members<n>.json,
sidewalk_from_scratch_candidates<n>.json).
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, provenance, seed_by_seed, write_results

from worldkit.config import parse_config
from worldkit.runs.world_models import best_stage


@dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    pretrained: bool = False
    """reuse the shipped V and M (checkpoints/sidewalk-vae, sidewalk-mdnrnn) instead of training them"""
    members: int = 1
    """the recipe's --members: MDN-RNNs in an ensemble M (1: the recipe's single M)"""
    m_candidates: int = 0
    """the recipe's --m_candidates: first Ms, the best of which goes on to the rounds (0: the recipe's default)"""
    run_dir: str = "benchmarks/runs/sidewalk_success"
    jobs: int = 1
    """seeds run at once, each in its own process"""
    threads: int = 1
    """the recipe's torch threads (0: torch's default, every core); with jobs > 1, keep 1"""
    report_only: bool = False


def _name(config: Config) -> str:
    """The results file's name (and the run folder's suffix) of this variant."""
    if config.pretrained:
        return "sidewalk_pretrained"
    return ("sidewalk_from_scratch" + (f"_members{config.members}" if config.members != 1 else "")
            + (f"_candidates{config.m_candidates}" if config.m_candidates else ""))


def _folder(config: Config, seed: int) -> Path:
    suffix = _name(config).removeprefix("sidewalk_from_scratch").removeprefix("sidewalk")
    return ROOT / (config.run_dir + suffix) / f"seed{seed}"


def run_seed(config: Config, seed: int) -> None:
    """One recipe run to its evaluation; its wall-clock, summed over resumptions, in ``seconds.json``."""
    folder = _folder(config, seed)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "recipes" / "miniworld_cmaes.py"), "--seeds", str(seed),
               f"--pretrained={config.pretrained}", f"--members={config.members}",
               f"--m_candidates={config.m_candidates}", f"--threads={config.threads}",
               f"--run_dir={folder}",
               "--progress=False", "--wandb_mode=disabled"]
    seconds_file = folder / "seconds.json"
    saved = json.loads(seconds_file.read_text()) if seconds_file.exists() else {"seconds": 0.0, "jobs": 1}
    jobs = max(saved.get("jobs", 1), config.jobs)  # the most seeds that ever shared the machine with this one
    start = time.monotonic()

    def record_time() -> None:  # every half minute too, so a run killed mid-way keeps the time it spent
        seconds_file.write_text(json.dumps({"seconds": saved["seconds"] + time.monotonic() - start, "jobs": jobs,
                                            "threads": config.threads}))

    with open(folder / "recipe.log", "a") as log:
        print("start", " ".join(command[1:]), flush=True)
        recipe = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            try:
                recipe.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                record_time()
    record_time()
    if recipe.returncode:
        raise SystemExit(f"seed {seed} failed (exit {recipe.returncode}); its log: {folder / 'recipe.log'}")


def _selection(run: Path) -> dict:
    """Each stage's real success in the selection episodes and the chosen stage ("." is the first
    search, "candidate<k>" another first M's, "[candidate<k>/]round<i>" the rounds), with the real
    episodes each stage's world model had seen."""
    if not (run / "selection.json").exists():  # a run without rounds or selection keeps its only stage
        return {"chosen": ".", "stages": {}}
    selection = json.loads((run / "selection.json").read_text())
    firsts = [name for name in selection["stages"] if "round" not in name]
    base = best_stage(selection["stages"], firsts)  # the first M the rounds went on from
    stages = {}
    for name, score in selection["stages"].items():
        if "round" in name and (run / name).parent != run / base:
            continue  # a round of a first M the run did not go on with (scored by an earlier run of the folder)
        stage = run / name
        rounds = int(stage.name.removeprefix("round")) if stage.name.startswith("round") else 0
        seen = sum(len(list(folder.glob("*.npz")))
                   for folder in [run / "store", *(stage.parent / f"round{i}" / "store" for i in range(1, rounds + 1))])
        stages[name] = {"success_rate": score["success_rate"], "real_episodes": seen}
        if (stage / "round.json").exists():  # the stage the round went on from
            stages[name]["goes_on_from"] = json.loads((stage / "round.json").read_text())["goes_on_from"]
    return {"chosen": selection["chosen"], "stages": stages}


def report(config: Config) -> dict:
    done = [(seed, _folder(config, seed)) for seed in sorted(config.seeds)
            if (_folder(config, seed) / f"Sidewalk-seed{seed}" / "evaluation.json").exists()]
    evaluations = [json.loads((folder / f"Sidewalk-seed{seed}" / "evaluation.json").read_text()) for seed, folder in done]
    selections = [_selection(folder / f"Sidewalk-seed{seed}") for seed, folder in done]
    results = {**provenance(), "pretrained": config.pretrained, **({"members": config.members} if config.members != 1 else {}),
               **({"m_candidates": config.m_candidates} if config.m_candidates else {}),
               "protocol": "the chosen controller, 100 real episodes from reset seeds 100,000 + 1,000·seed; success = box reached",
               "seeds": [seed for seed, _ in done],
               "per_seed": [e["real"]["success_rate"] for e in evaluations],
               "dream_return_per_seed": [e["dream"]["mean_return"] for e in evaluations],
               "chosen_stage_per_seed": [selection["chosen"] for selection in selections],
               "selection_protocol": "each stage's controller in 50 real episodes from reset seeds 50,000 + 1,000·seed",
               "stages_per_seed": [selection["stages"] for selection in selections],
               "minutes_per_seed": [round(json.loads((folder / "seconds.json").read_text())["seconds"] / 60, 1)
                                    for _, folder in done]}
    results["threads_per_seed"] = [json.loads((folder / "seconds.json").read_text()).get("threads", 1)
                                   for _, folder in done]
    results["seeds_at_once_per_seed"] = [json.loads((folder / "seconds.json").read_text()).get("jobs", config.jobs)
                                         for _, folder in done]  # two at once share the cores and take longer
    results["hours_per_seed"] = [round(minutes / 60, 3) for minutes in results["minutes_per_seed"]]
    results = write_results(_name(config), results, "Sidewalk")
    gifs = {seed: _folder(config, seed) / f"Sidewalk-seed{seed}" / "real_vs_dream.gif" for seed in results["seeds"]}
    on_disk = [(rate, seed) for seed, rate in zip(results["seeds"], results["per_seed"]) if gifs[seed].exists()]
    if _name(config) == "sidewalk_from_scratch" and len(on_disk) > 1:  # of every recorded seed whose run is on disk
        for kind, (_, seed) in (("best", max(on_disk)), ("worst", min(on_disk))):
            _real_and_dream_strip(gifs[seed], ROOT / "docs" / "img" / f"sidewalk_from_scratch_{kind}.png")
    return results


def _real_and_dream_strip(gif: Path, path: Path, frames: int = 8) -> None:
    """Evenly spaced frames of a run's real-vs-dream animation as a still: the real episode on top,
    the dream from the same first frame under the same controller below (black once it ended)."""
    import imageio.v3 as iio
    import numpy as np

    from worldkit.plots import frame_grid

    animation = iio.imread(gif)[:, ::3, ::3]  # the animation is drawn 3x enlarged
    picked = animation[np.linspace(0, len(animation) - 1, frames).astype(int)]
    half = picked.shape[2] // 2
    frame_grid([picked[:, :, :half], picked[:, :, half:]], path, upscale=2)


if __name__ == "__main__":
    seed_by_seed(parse_config(Config), run_seed, report)
