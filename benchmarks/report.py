"""The generated parts of docs/benchmarks.md and README.md, written from benchmarks/results/*.json.

    python benchmarks/report.py            # rewrite them
    python benchmarks/report.py --check    # exit 1, naming the part, where a page differs from the JSON

A generated part sits between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``; the text
around it is written by hand. Numbers come from the JSON files only (their statistics were
computed with rliable by the script that ran the benchmark), so a page cannot drift from its results.
"""

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = (ROOT / "docs" / "benchmarks.md", ROOT / "README.md")
ENVS = ("Walker2d-v4", "HalfCheetah-v4", "Hopper-v4")


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ci(stats: dict, key: str = "iqm") -> str:
    low, high = stats[f"{key}_ci"]
    return f"{stats[key]:,.0f} [{low:,.0f}, {high:,.0f}]"


def _seeds(values: list, wanted: int) -> str:
    return f"{len(values)} of {wanted} seeds" if len(values) < wanted else f"{len(values)} seeds"


# ------------------------------------------------------------------------------------- sections

def goals() -> str:
    """The open goals: one row each, with where it stands."""
    rows = ["| system | goal | measured (IQM [95% CI]) | status |", "| --- | --- | --- | --- |"]
    rows += _wm_ppo_goal_rows()
    rows.append(_dreamer_goal_row())
    rows.append(_dream_ppo_goal_row())
    return "\n".join(rows)


def _wm_ppo_goal_rows() -> list[str]:
    results = _load("wm_ppo_default_vs_ppo")
    goal = "default WM-PPO at least level with PPO at 1M steps (last-100 training return, 5 seeds)"
    if results is None:
        return [f"| world-model-assisted PPO | {goal} | not measured yet | open |"]
    rows = []
    for env in ENVS:
        ppo, wm = results["stats"].get(f"{env}/ppo"), results["stats"].get(f"{env}/wm_ppo")
        if ppo is None or wm is None:
            rows.append(f"| world-model-assisted PPO, {env} | {goal} | not measured yet | open |")
            continue
        seeds = min(ppo["train"]["seeds"], wm["train"]["seeds"])
        measured = f"WM-PPO {_ci(wm['train'])} vs PPO {_ci(ppo['train'])}"
        if seeds < 5:
            status = f"measuring ({seeds} of 5 seeds)"
        else:
            status = "met" if wm["train"]["iqm_ci"][1] >= ppo["train"]["iqm"] else "not met"
        rows.append(f"| world-model-assisted PPO, {env} | {goal} | {measured} | {status} |")
    return rows


def _dreamer_goal_row() -> str:
    results = _load("dreamer_walker_state_cpu")
    goal = "walker-walk from state, `--preset=cpu`, 100k env steps: IQM ≥ 500 over 5 seeds, each run ≤ 2.5 h on 2 cores"
    if results is None or not results["per_seed"]["dmc:walker-walk"]:
        return f"| Dreamer | {goal} | not measured yet | open |"
    finals, hours = results["per_seed"]["dmc:walker-walk"], results["hours_per_seed"]
    measured = f"{_ci(results['stats'])}; per seed {', '.join(f'{v:.0f}' for v in finals)} in {max(hours):.1f} h at most"
    if len(finals) < 5:
        status = f"measuring ({len(finals)} of 5 seeds)"
    else:
        status = "met" if results["stats"]["iqm"] >= 500 and max(hours) <= 2.5 else "not met"
    return f"| Dreamer | {goal} | {measured} | {status} |"


def _dream_ppo_goal_row() -> str:
    results = _load("dream_ppo_walker")
    goal = "PPO only in dreams, Walker2d-v4: IQM ≥ 1,500 over 5 seeds with ≤ 300k real steps, each run ≤ 2 h"
    if results is None or not results["per_seed"]:
        return f"| PPO in the dream | {goal} | not measured yet | open |"
    finals, hours = results["per_seed"], results["hours_per_seed"]
    measured = (f"{_ci(results['stats'])}; per seed {', '.join(f'{v:.0f}' for v in finals)} with "
                f"{max(results['real_steps_per_seed']):,} real steps, {max(hours):.1f} h at most")
    if len(finals) < 5:
        status = f"measuring ({len(finals)} of 5 seeds)"
    else:
        status = "met" if results["stats"]["iqm"] >= 1500 and max(hours) <= 2 else "not met"
    return f"| PPO in the dream | {goal} | {measured} | {status} |"


def wm_ppo_default_vs_ppo() -> str:
    """Per env: each method's per-seed training and evaluation returns and their IQM and mean."""
    results = _load("wm_ppo_default_vs_ppo")
    if results is None:
        return "Not measured yet: `python benchmarks/wm_ppo_default_vs_ppo.py` runs the grid."
    lines = [f"Protocol: {results['protocol']['train']}; and {results['protocol']['eval']}. "
             f"`{results['command']}`, commit `{(results.get('commit') or '?')[:8]}`.", "",
             "| env | method | seeds | training return: IQM [95% CI] | mean [95% CI] | deterministic evaluation: IQM [95% CI] | per seed (training) |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for key, stats in results["stats"].items():
        env, method = key.split("/")
        per_seed = ", ".join(f"{v:,.0f}" for v in results["per_seed"][key])
        lines.append(f"| {env} | {method} | {stats['train']['seeds']} | {_ci(stats['train'])} | "
                     f"{_ci(stats['train'], 'mean')} | {_ci(stats['eval'])} | {per_seed} |")
    return "\n".join(lines)


def what_works() -> str:
    """The README's short table: system, task, our number with its CI and seeds, a published reference."""
    rows = ["| system | task | ours: IQM [95% CI] (seeds) | published reference |", "| --- | --- | --- | --- |"]
    wm = _load("wm_ppo_default_vs_ppo")
    reference = {"Walker2d-v4": "paper draft, Table 1: PPO 4,130, PPO+WM 4,660",
                 "HalfCheetah-v4": "paper draft, Table 1: PPO 4,920, PPO+WM 5,430", "Hopper-v4": "-"}
    for env in ENVS:
        for method, name in (("ppo", "PPO"), ("wm_ppo", "WM-assisted PPO (default)")):
            stats = (wm or {}).get("stats", {}).get(f"{env}/{method}")
            ours = f"{_ci(stats['train'])} ({stats['train']['seeds']})" if stats else "not measured yet"
            rows.append(f"| {name} | {env}, 1M steps, last-100 training return | {ours} | {reference[env]} |")
    dreamer = _load("dreamer_walker_state_cpu")
    ours = (f"{_ci(dreamer['stats'])} ({dreamer['stats']['seeds']})" if dreamer and dreamer.get("stats")
            else "not measured yet")
    rows.append(f"| Dreamer, `--preset=cpu` | dm-control walker-walk from state, 100k env steps | {ours} | "
                "DreamerV3: 443-475 at 100k |")
    dream = _load("dream_ppo_walker")
    ours = f"{_ci(dream['stats'])} ({dream['stats']['seeds']})" if dream and dream.get("stats") else "not measured yet"
    rows.append(f"| PPO only in dreams (ensemble) | Walker2d-v4, 300k real steps | {ours} | - |")
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {"goals": goals, "wm_ppo_default_vs_ppo": wm_ppo_default_vs_ppo,
                                          "what_works": what_works}


# ---------------------------------------------------------------------------------------- pages

def render(text: str, sections: dict[str, Callable[[], str]] = SECTIONS) -> str:
    """``text`` with every generated part replaced by what its section gives now."""
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in sections:
            raise ValueError(f"no section {name!r} in benchmarks/report.py (known: {', '.join(sections)})")
        return f"<!-- report:{name} -->\n{sections[name]().strip()}\n<!-- /report:{name} -->"

    return re.sub(r"<!-- report:(\w+) -->.*?<!-- /report:\1 -->", fill, text, flags=re.DOTALL)


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 where a page differs")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text()
        fresh = render(text)
        if fresh == text:
            continue
        if args.check:
            stale.append(page.relative_to(ROOT))
        else:
            page.write_text(fresh)
            print(f"rewrote {page.relative_to(ROOT)}")
    if stale:
        print(f"out of date with benchmarks/results: {', '.join(map(str, stale))}; run python benchmarks/report.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
