"""How fast worldkit.data.collect runs against the bare env, and how much memory it takes.

For Walker2d-v4 (fast physics, ~20-step random episodes: the most files per step),
dm-control walker-walk (1000-step episodes: few files) and MiniWorld Sidewalk (rendered
pixels, compressed files), it measures in one run:

- the raw step rate: a bare ``make_env`` loop with random actions, nothing stored;
- ``collect`` with a random policy into a fresh store: one env, and two async envs;

each with the CPU time it used (children included), so rates compare per core. Each run's
start-up (making, resetting and closing its env or vector env, timed on its own) is taken
out of its rate: the rates are steady-state ones, and the start-up is reported beside them.
Raw and collect runs alternate and repeat, and the median is reported, because other
processes share the machine. It times ``store.add`` of one short episode file, repeated,
which is what collecting costs per episode beyond stepping. Then it collects 200k Sidewalk
frames in a child process and samples the child's resident memory (its own children
included) to find the peak.

    python benchmarks/collect_rate.py            # full: ~10 min on 2 cores
    python benchmarks/collect_rate.py --quick    # ~1 min, 20k-frame memory run

Writes benchmarks/results/collect_rate.json and prints a markdown table.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import provenance

import worldkit  # noqa: F401  (headless rendering set-up before any env)
from worldkit.data import EpisodeStore, collect
from worldkit.envs import make_env, make_vector_env

RESULTS = Path(__file__).resolve().parent / "results" / "collect_rate.json"
ENVS = {"Walker2d-v4": 20_000, "dmc:walker-walk": 20_000, "miniworld:Sidewalk": 3_000}  # steps per timed run
GOAL_RATIO, GOAL_RSS = 0.8, 2 * 2**30


def cpu_seconds() -> float:
    """User + system time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run, startup: tuple[float, float]) -> dict:
    """Run ``run()`` (which returns its steps); its rate and cores net of ``startup`` (wall, cpu)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    steps = run()
    wall, cpu = time.perf_counter() - wall - startup[0], cpu_seconds() - cpu - startup[1]
    return {"steps": steps, "seconds": wall, "startup_s": startup[0], "steps_per_s": steps / wall,
            "cores": cpu / wall, "steps_per_core_s": steps / cpu}


def measure_startup(spec: str, num_envs: int | None, vectorization: str = "sync") -> tuple[float, float]:
    """(wall, cpu) seconds to make, reset and close the env (None: one bare env) or vector env."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    env = make_env(spec, seed=0) if num_envs is None else make_vector_env(spec, num_envs, vectorization=vectorization)
    env.reset(seed=0)
    env.close()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def raw_loop(spec: str, steps: int) -> int:
    env = make_env(spec, seed=0)
    env.reset(seed=0)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return steps


def collect_run(spec: str, steps: int, num_envs: int, vectorization: str, seed: int) -> int:
    directory = Path(tempfile.mkdtemp(prefix="worldkit-bench-"))
    try:
        store = collect(directory / "store", spec, steps=steps, num_envs=num_envs,
                        vectorization=vectorization, seed=seed, progress=False)
        return store.num_steps
    finally:
        shutil.rmtree(directory)


def rates(spec: str, steps: int, repeats: int) -> dict:
    modes = {"raw": (lambda seed: raw_loop(spec, steps), (None,)),
             "collect, 1 env": (lambda seed: collect_run(spec, steps, 1, "sync", seed), (None,)),
             "collect, 2 async envs": (lambda seed: collect_run(spec, steps, 2, "async", seed), (2, "async"))}
    runs = {mode: [] for mode in modes}
    raw_loop(spec, 100)  # one-time costs (imports, the first GL context) are no one's rate
    for repeat in range(repeats):  # interleaved, so a burst of load elsewhere hits every mode alike
        for mode, (run, envs) in modes.items():
            runs[mode].append(timed(lambda: run(repeat), measure_startup(spec, *envs)))
            print(f"  {spec} {mode}: {runs[mode][-1]['steps_per_s']:.0f} steps/s "
                  f"on {runs[mode][-1]['cores']:.2f} cores", flush=True)
    raw = summarize(runs["raw"])
    out = {}
    for mode, mode_runs in runs.items():
        row = summarize(mode_runs)
        row["ratio"] = row["steps_per_s"] / raw["steps_per_s"]
        row["ratio_per_core"] = row["steps_per_core_s"] / raw["steps_per_core_s"]
        out[mode] = {**row, "runs": mode_runs}
    return out


def summarize(runs: list[dict]) -> dict:
    rate = statistics.median(r["steps_per_s"] for r in runs)
    cores = statistics.median(r["cores"] for r in runs)
    per_core = statistics.median(r["steps_per_core_s"] for r in runs)
    startup = statistics.median(r["startup_s"] for r in runs)
    return {"steps_per_s": rate, "cores": cores, "steps_per_core_s": per_core, "startup_s": startup}


def file_cost(files: int = 500) -> dict:
    """Wall and CPU time per episode file: ``store.add`` of one 21-step Walker2d episode, repeated."""
    directory = Path(tempfile.mkdtemp(prefix="worldkit-bench-"))
    try:
        source = collect(directory / "source", "Walker2d-v4", episodes=1, progress=False)
        store = EpisodeStore.create(directory / "store", source.env_spec, source.observation_space,
                                    source.action_space)
        episode = source.episode(0)
        own = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter()
        for _ in range(files):
            store.add(episode)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
        store.close()
        return {"files": files, "steps_per_file": int(source.lengths[0]), "wall_ms": 1e3 * wall / files,
                "user_ms": 1e3 * (after.ru_utime - own.ru_utime) / files,
                "kernel_ms": 1e3 * (after.ru_stime - own.ru_stime) / files}
    finally:
        shutil.rmtree(directory)


def memory_run(frames: int) -> dict:
    """Collect ``frames`` Sidewalk frames in a child process; sample its tree's RSS every 50 ms."""
    import psutil

    directory = Path(tempfile.mkdtemp(prefix="worldkit-bench-"))
    code = ("import sys; from worldkit.data import collect; "
            "collect(sys.argv[1], 'miniworld:Sidewalk', steps=int(sys.argv[2]), progress=False)")
    peak, samples, start = 0, 0, time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, str(directory / "store"), str(frames)])
    try:
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                samples += 1
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)
        if child.returncode != 0:
            raise RuntimeError(f"the memory run's collector exited with {child.returncode}")
        seconds = time.perf_counter() - start
        store = EpisodeStore(directory / "store")
        disk = sum(p.stat().st_size for p in store.episode_paths)
        raw_bytes = sum((length + 1) * 60 * 80 * 3 for length in store.lengths)
        return {"frames": store.num_steps, "episodes": len(store), "seconds": seconds, "samples": samples,
                "peak_rss_bytes": peak, "peak_rss_gib": peak / 2**30, "store_bytes": disk,
                "compression_ratio": raw_bytes / disk}
    finally:
        child.kill()
        shutil.rmtree(directory, ignore_errors=True)


def table(results: dict) -> str:
    lines = ["| env | run | start-up s | steps/s | cores used | steps/s per core | vs raw | vs raw, per core |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for spec, modes in results["rates"].items():
        for mode, row in modes.items():
            lines.append(f"| {spec} | {mode} | {row['startup_s']:.2f} | {row['steps_per_s']:,.0f} | "
                         f"{row['cores']:.2f} | {row['steps_per_core_s']:,.0f} | {row['ratio']:.2f} | "
                         f"{row['ratio_per_core']:.2f} |")
    memory, files = results["memory"], results["file_cost"]
    lines += ["", "| memory run | frames | seconds | peak RSS (process tree) | store on disk | compression |",
              "| --- | ---: | ---: | ---: | ---: | ---: |",
              f"| miniworld:Sidewalk, 1 env | {memory['frames']:,} | {memory['seconds']:.0f} | "
              f"{memory['peak_rss_gib']:.2f} GiB | {memory['store_bytes'] / 2**20:,.0f} MiB | "
              f"{memory['compression_ratio']:.1f}x |",
              "", "| one episode file (store.add, synchronous) | wall ms | user CPU ms | kernel CPU ms |",
              "| --- | ---: | ---: | ---: |",
              f"| Walker2d-v4, {files['steps_per_file']} steps | {files['wall_ms']:.2f} | {files['user_ms']:.2f} | "
              f"{files['kernel_ms']:.2f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, one repeat, a 20k-frame memory run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats of each rate (median reported)")
    parser.add_argument("--memory-frames", type=int, default=200_000, help="Sidewalk frames in the memory run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    scale, repeats = (0.25, 1) if args.quick else (1.0, args.repeats)
    frames = min(args.memory_frames, 20_000) if args.quick else args.memory_frames

    prov = provenance()
    results = {
        **prov,
        "machine": {**prov["machine"], "cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "goal": {"ratio_per_core": GOAL_RATIO, "peak_rss_bytes": GOAL_RSS},
        "rates": {spec: rates(spec, int(steps * scale), repeats) for spec, steps in ENVS.items()},
    }
    results["file_cost"] = file_cost()
    print(f"  memory run: {frames:,} Sidewalk frames", flush=True)
    results["memory"] = memory_run(frames)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
