"""What every benchmark's results JSON records: the command, the commit, the machine, and
per-seed values summarised with rliable (IQM and mean, 95% stratified bootstrap CIs)."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def provenance() -> dict:
    """The command that is running, the git commit it runs at, and the machine it runs on."""
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {
        "command": " ".join(["python", *sys.argv]),
        "commit": commit, "uncommitted_changes": dirty,
        "machine": {"cores": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "cpu": _cpuinfo().get("model name"), "native_bf16": _native_bf16(),
                    "torch": torch.__version__, "load_average": list(os.getloadavg())},
    }


def _cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        return {}
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}


def _native_bf16() -> bool:
    """bfloat16 matrix instructions (AVX512-BF16 or AMX); without them torch emulates bfloat16, slowly."""
    return bool({"avx512_bf16", "amx_bf16"} & set(_cpuinfo().get("flags", "").split()))


def interval_estimates(per_task: dict[str, list[float]], reps: int = 5_000, seed: int = 0) -> dict:
    """IQM and mean over seeds with 95% stratified bootstrap CIs (rliable), plus the sample std.
    The same resamples and seed as the pages benchmarks/report.py writes, so a JSON and its page agree.

    ``per_task`` maps a task to its per-seed scores; the aggregate is over all tasks' runs
    (one task gives the ordinary per-seed statistics). Returns plain floats for JSON.
    """
    from rliable import library, metrics

    lengths = {len(v) for v in per_task.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"every task needs the same, non-zero number of seeds, got {[len(v) for v in per_task.values()]}")
    scores = np.array(list(per_task.values()), dtype=float).T  # (seeds, tasks)
    aggregate = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])
    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    points, intervals = library.get_interval_estimates({"run": scores}, aggregate, reps=reps)
    (iqm, mean), ((iqm_low, mean_low), (iqm_high, mean_high)) = points["run"], intervals["run"]
    return {"seeds": scores.shape[0], "iqm": float(iqm), "iqm_ci": [float(iqm_low), float(iqm_high)],
            "mean": float(mean), "mean_ci": [float(mean_low), float(mean_high)],
            "std": float(scores.std(ddof=1)) if scores.size > 1 else None}


def run_recipe(recipe: str, run_dir: Path, *flags: str) -> Path:
    """``recipes/<recipe>.py`` in ``run_dir`` until it has written ``summary.json`` (a killed run
    resumes; a finished one is skipped), its output appended to ``<run_dir>.log``."""
    if not (run_dir / "summary.json").exists():
        command = [sys.executable, str(ROOT / "recipes" / f"{recipe}.py"), *flags, f"--run_dir={run_dir}",
                   "--progress=False", "--wandb_mode=disabled"]
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(run_dir.with_suffix(".log"), "a") as log:
            print("start", " ".join(command[1:]), flush=True)
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=True)
    return run_dir


def write_results(name: str, results: dict, task: str) -> dict:
    """``results`` with rliable's statistics over its ``per_seed`` values (on ``task``) added,
    written to benchmarks/results/<name>.json, keeping the seeds it already records under the same
    protocol that ``results`` lacks (``--seeds`` then adds seeds to a result); prints the per-seed values."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    if path.exists():
        results = _with_recorded_seeds(json.loads(path.read_text()), results)
    if results["per_seed"]:
        results["stats"] = interval_estimates({task: results["per_seed"]})
    if path.exists() and _same_values(json.loads(path.read_text()), results):
        print(f"{path.name} already holds these seeds' values; left as it is, with the command that made them")
    else:
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("seeds", "per_seed", "hours_per_seed")}))
    return results


def _with_recorded_seeds(old: dict, new: dict) -> dict:
    """``new`` plus the seeds that ``old`` records under the same protocol and ``new`` lacks (their
    run folders are gone): results outlive run folders, so seeds can be added in a later sitting."""
    if old.get("protocol") != new.get("protocol") or "seeds" not in old or "seeds" not in new:
        return new
    kept = [seed for seed in old["seeds"] if seed not in new["seeds"]]
    if not kept:
        return new
    columns = [key for key, value in new.items() if isinstance(value, list) and len(value) == len(new["seeds"])
               and isinstance(old.get(key), list) and len(old[key]) == len(old["seeds"])]  # "seeds", "per_seed", ...
    rows = {seed: {key: new[key][i] for key in columns} for i, seed in enumerate(new["seeds"])}
    rows |= {seed: {key: old[key][old["seeds"].index(seed)] for key in columns} for seed in kept}
    print(f"seeds {kept} kept from the recorded results (their run folders are absent)")
    earlier = []  # each kept seed stays with the run that measured it
    for run in [*old.get("earlier_runs", []), {"command": old.get("command"), "commit": old.get("commit"),
                                               "seeds": old["seeds"]}]:
        seeds = [seed for seed in run["seeds"] if seed in kept and not any(seed in e["seeds"] for e in earlier)]
        if seeds:
            earlier.append({**run, "seeds": seeds})
    return {**new, **{key: [rows[seed][key] for seed in sorted(rows)] for key in columns}, "earlier_runs": earlier}


def _same_values(old: dict, new: dict) -> bool:
    """Whether a results file already records everything ``new`` holds (only its provenance would change)."""
    provenance_keys = {"command", "commit", "uncommitted_changes", "machine", "earlier_runs"}
    return all(json.loads(json.dumps(old.get(key))) == json.loads(json.dumps(new.get(key)))
               for key in set(old) | set(new) if key not in provenance_keys)


def seed_by_seed(config, run_seed, report) -> None:
    """Each of ``config.seeds`` (finished ones are skipped by ``run_seed``), ``config.jobs`` at once
    where the config has it, reporting after each, so that a stopped benchmark has its finished
    seeds on record; with ``config.report_only``, only the report."""
    if not config.report_only:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(max(1, getattr(config, "jobs", 1))) as pool:  # each seed runs in its own process
            for done in as_completed([pool.submit(run_seed, config, seed) for seed in config.seeds]):
                done.result()
                report(config)
    report(config)
