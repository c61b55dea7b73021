"""W&B sweep files for the recipes, and an offline runner that needs no W&B server.

A sweep file (``recipes/sweeps/*.yaml``) is in W&B's own format, so the same file serves two
paths:

- many machines: ``wandb sweep FILE`` once, then ``wandb agent ID`` on each machine;
- one machine, no server: ``python -m worldkit.sweeps run FILE``, which asks W&B's own search
  engine (:class:`worldkit.sweeps_engine.SweepEngine`) for each run's parameters, starts the
  recipe with the command line a W&B agent would build, logs it to W&B offline, and feeds its
  metric back, then writes a table and a plot.

A recipe joins by having a sweep file: it must take ``--name=value`` flags (every recipe does,
through :func:`worldkit.config.parse_config`), ``--run_dir`` and ``--wandb_mode``, and log the
sweep's metric through :class:`worldkit.tracking.RunLogger`, whose ``metrics.jsonl`` the runner
reads. Sweep files end their command with ``--wandb_mode=online``, since a W&B agent only sees
online runs; the offline runner puts its own ``--run_dir`` and ``--wandb_mode`` in their place.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from worldkit.files import read_jsonl
from worldkit.sweeps_engine import SweepEngine
from worldkit.tracking import check_wandb_mode

AGENT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
"""What a W&B agent runs when a sweep file names no command; ``${args}`` gives ``--name=value``."""

RUNNER_FLAGS = ("run_dir", "wandb_mode")
"""Flags the offline runner sets for every run itself."""


class SweepFileError(ValueError):
    """A sweep file that W&B's engine or the runner refuses; the message lists every problem."""


def load_sweep(path: str | Path, engine: SweepEngine | None = None) -> dict[str, Any]:
    """Read a sweep file and check it, before any run starts.

    The engine checks it against W&B's schema (and asks it for a first run, which catches what
    the schema cannot, such as a grid over a continuous range); worldkit checks what its
    recipes need: flags as ``--name=value``, flat parameter names (``ppo.learning_rate``, not a
    nested block, which an agent would pass as one dict-valued flag), a metric, and a program
    that exists (relative to the working directory, as for ``wandb agent``).

    Raises:
        SweepFileError: naming every problem found.
    """
    try:
        sweep = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise SweepFileError(f"{path}: not YAML: {error}") from error
    if not isinstance(sweep, dict):
        raise SweepFileError(f"{path}: a sweep file is a mapping (program, method, metric, parameters)")
    problems = (engine or SweepEngine()).ensure().validate(sweep)
    problems += _recipe_problems(sweep)
    if problems:
        raise SweepFileError(f"{path}:\n" + "\n".join(f"  - {problem}" for problem in problems))
    return sweep


def _recipe_problems(sweep: dict[str, Any]) -> list[str]:
    problems = []
    if "${args}" not in sweep.get("command", AGENT_COMMAND):
        problems.append("command must pass the parameters as ${args} (flags --name=value)")
    if not isinstance(sweep.get("metric"), dict) or not sweep["metric"].get("name"):
        problems.append("metric.name is missing: the runner reads that metric from each run")
    if not sweep.get("program") or not Path(sweep["program"]).is_file():
        problems.append(f"program {sweep.get('program')!r} is not a file (paths are relative to where you run)")
    parameters = sweep.get("parameters")
    for name, spec in (parameters if isinstance(parameters, dict) else {}).items():
        if isinstance(spec, dict) and "parameters" in spec:
            problems.append(f"parameter {name!r} is nested: name each flag in full, e.g. '{name}.<field>'")
        if name in RUNNER_FLAGS:
            problems.append(f"{name} cannot be swept: the offline runner sets it for each run")
    return problems


def agent_command(sweep: dict[str, Any], params: dict[str, Any], *, interpreter: str = "python",
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The command a W&B agent runs for one set of parameters, then ``extra_args``.

    The macros are expanded by wandb's own agent code, so ``${args}`` gives exactly the flags
    an agent passes (``--latent_dim=16``, ``--ppo.learning_rate=0.0003``).
    """
    from wandb.sdk.launch.sweeps.utils import (
        create_sweep_command,
        create_sweep_command_args,
    )

    flags = create_sweep_command_args({"args": {name: {"value": value} for name, value in params.items()}})
    macros = {**flags, "env": ["/usr/bin/env"], "interpreter": [interpreter], "program": [sweep["program"]]}
    command = []
    for chunk in create_sweep_command(list(sweep.get("command", AGENT_COMMAND))):
        chunk = str(chunk)
        is_macro = chunk.startswith("${") and chunk.endswith("}")
        command += macros.get(chunk[2:-1], []) if is_macro else [chunk]
    return command + list(extra_args)


@dataclass
class RunResult:
    """One run of an offline sweep, as recorded in ``<out>/runs.jsonl``."""

    name: str
    params: dict[str, Any]
    state: str = "running"
    """``running`` (started, not yet recorded as ended), ``finished`` or ``failed``"""
    metric: float | None = None
    """the metric's last value (the mean over seed folders when a run has several)"""
    history: list[float] = field(default_factory=list)
    """every value of the metric the run logged"""
    seconds: float | None = None
    command: list[str] = field(default_factory=list)

    def as_engine_run(self, metric_name: str) -> dict[str, Any]:
        """This run as the engine's ``sweeps.SweepRun``, what a Bayesian search learns from."""
        summary = {} if self.metric is None else {metric_name: self.metric}
        return {"name": self.name, "state": self.state, "config": {k: {"value": v} for k, v in self.params.items()},
                "summary_metrics": summary, "history": [{metric_name: value} for value in self.history]}


def run_sweep(path: str | Path, out_dir: str | Path | None = None, *, count: int | None = None,
              extra_args: Sequence[str] = (), engine: SweepEngine | None = None,
              wandb_mode: str = "offline") -> list[RunResult]:
    """Run a sweep on this machine, one recipe subprocess after another, logged to W&B offline.

    Each run is the command a W&B agent would run, then ``extra_args`` (for example a smaller
    ``--total_steps``), then ``--run_dir=<out>/<run-NNN>`` and ``--wandb_mode``, which replace
    any such flags in the file's command. Its output goes to ``<out>/<run-NNN>/output.log``.
    Started again with the same ``out_dir``, a sweep carries on: ended runs are fed back to the
    engine and a run that was interrupted is started again with its parameters (the recipe
    resumes it from its saved state).

    Args:
        path: the sweep file.
        out_dir: default ``runs/sweeps/<file name>``.
        count: runs in the sweep in all; default the sweep's ``run_cap``, or every grid point.
        extra_args: recipe flags for every run; they may not set a swept parameter.
        engine: default :class:`SweepEngine` at its default place, set up if missing.
        wandb_mode: for every run; ``online`` needs credentials, checked before any run.

    Returns:
        Every run of the sweep, in order; the table and plot are in ``out_dir`` too.
    """
    check_wandb_mode(wandb_mode)
    engine = (engine or SweepEngine()).ensure()
    sweep = load_sweep(path, engine)
    count = count or sweep.get("run_cap")
    if count is None and sweep["method"] != "grid":
        raise ValueError(f"a {sweep['method']} sweep does not end by itself: give a count")
    flagged = {arg[2:].split("=")[0] for arg in extra_args if arg.startswith("--")}
    if clash := flagged & (set(sweep["parameters"]) | set(RUNNER_FLAGS)):
        raise ValueError(f"extra arguments may not set {sorted(clash)}: the sweep or the runner sets them")
    out = Path(out_dir or Path("runs/sweeps") / Path(path).stem)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    runs = _read_runs(log)
    metric = sweep["metric"]["name"]
    while count is None or sum(run.state != "running" for run in runs.values()) < count:
        interrupted = next((run for run in runs.values() if run.state == "running"), None)
        if interrupted:
            run = interrupted
        else:
            params = engine.next_params(sweep, [run.as_engine_run(metric) for run in runs.values()])
            if params is None:
                break  # the grid is done
            run = RunResult(f"run-{len(runs):03d}", params)
        run_dir = out / run.name
        command = agent_command(sweep, run.params, interpreter=sys.executable, extra_args=extra_args)
        run.command = [arg for arg in command if not arg.startswith(tuple(f"--{flag}=" for flag in RUNNER_FLAGS))]
        run.command += [f"--run_dir={run_dir}", f"--wandb_mode={wandb_mode}"]
        runs[run.name] = run
        _append(log, run)
        _execute(run, run_dir, metric, tag=f"sweep:{Path(path).stem}", label=f"{len(runs)}/{count or '?'}")
        _append(log, run)
    results = list(runs.values())
    write_results(sweep, results, out)
    return results


def _execute(run: RunResult, run_dir: Path, metric: str, *, tag: str, label: str) -> None:
    """Run the recipe, then read the metric it logged."""
    flags = " ".join(f"{name}={value}" for name, value in run.params.items())
    print(f"[sweep {label}] {run.name}: {flags}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    tags = ",".join(filter(None, [os.environ.get("WANDB_TAGS"), tag]))
    start = time.monotonic()
    with open(run_dir / "output.log", "a") as output:
        process = subprocess.run(run.command, stdout=output, stderr=subprocess.STDOUT,
                                 env={**os.environ, "WANDB_TAGS": tags})
    run.seconds = round(time.monotonic() - start, 1)
    run.metric, run.history = _read_metric(run_dir, metric)
    run.state = "finished" if process.returncode == 0 and run.metric is not None else "failed"
    print(f"[sweep {label}] {run.name}: {run.state}, {metric} = {run.metric} ({run.seconds} s"
          + ("" if run.state == "finished" else f"; see {run_dir / 'output.log'}") + ")", flush=True)


def _read_metric(run_dir: Path, metric: str) -> tuple[float | None, list[float]]:
    """The metric's last value in each seed's ``metrics.jsonl`` (their mean) and every value."""
    finals, history = [], []
    for path in sorted(run_dir.rglob("metrics.jsonl")):
        values = [row[metric] for row in read_jsonl(path) if metric in row]
        finals += values[-1:]
        history += values
    return (sum(finals) / len(finals) if finals else None), history


def _read_runs(log: Path) -> dict[str, RunResult]:
    """Runs recorded so far; a run's later record replaces its earlier one."""
    runs: dict[str, RunResult] = {}
    for row in read_jsonl(log):
        runs[row["name"]] = RunResult(**row)
    return runs


def _append(log: Path, run: RunResult) -> None:
    with open(log, "a") as handle:
        handle.write(json.dumps(asdict(run)) + "\n")


def write_results(sweep: dict[str, Any], runs: Sequence[RunResult], out_dir: str | Path) -> dict[str, Path]:
    """``results.csv`` (run order), ``results.md`` (best first) and ``results.png`` (the metric
    against each swept parameter) in ``out_dir``."""
    out, metric, names = Path(out_dir), sweep["metric"]["name"], list(sweep["parameters"])
    header = ["run", "state", *names, metric, "seconds"]
    rows = [[run.name, run.state, *(run.params.get(name) for name in names), run.metric, run.seconds] for run in runs]
    with open(out / "results.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    sign = -1 if sweep["metric"].get("goal", "minimize") == "maximize" else 1
    best_first = sorted(rows, key=lambda row: (row[-2] is None, sign * (row[-2] or 0.0)))
    table = [header, ["---"] * len(header), *best_first]
    (out / "results.md").write_text("".join(f"| {' | '.join(map(_cell, row))} |\n" for row in table))
    paths = {"csv": out / "results.csv", "markdown": out / "results.md"}
    swept = [name for name, spec in sweep["parameters"].items() if "value" not in spec]
    ended = [run for run in runs if run.state == "finished"]
    if swept and ended:
        paths["plot"] = _plot(sweep, swept, ended, out / "results.png")
    return paths


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _plot(sweep: dict[str, Any], names: list[str], runs: Sequence[RunResult], path: Path) -> Path:
    from worldkit.plots import _save, plt

    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        spec, values = sweep["parameters"][name], [run.params[name] for run in runs]
        if "values" in spec:  # a choice: one column per value, in the file's order (then any others run)
            labels = [str(v) for v in spec["values"]]
            labels += sorted({str(v) for v in values} - set(labels))
            x = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            x = values
            if "log" in spec.get("distribution", ""):
                ax.set_xscale("log")
        ax.scatter(x, [run.metric for run in runs], s=24, alpha=0.8)
        ax.set(xlabel=name)
        ax.grid(alpha=0.3)
    axes[0][0].set(ylabel=sweep["metric"]["name"])
    figure.suptitle(f"{sweep.get('name', path.parent.name)}: {len(runs)} runs")
    return _save(figure, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m worldkit.sweeps {setup,validate,run}``; see ``--help``."""
    parser = argparse.ArgumentParser(prog="python -m worldkit.sweeps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine_venv", help="the sweep engine's virtualenv (default $WORLDKIT_SWEEPS_VENV "
                                              "or ~/.cache/worldkit/sweeps-venv)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="create the engine's virtualenv now (needs PyPI once)")
    check = commands.add_parser("validate", help="check sweep files with W&B's schema")
    check.add_argument("files", nargs="+")
    run = commands.add_parser("run", help="run a sweep offline; recipe flags for every run go after --",
                              usage="%(prog)s FILE [--count N] [--out DIR] [-- RECIPE_FLAGS ...]")
    run.add_argument("file")
    run.add_argument("--count", type=int, help="runs in all (default: run_cap, or the whole grid)")
    run.add_argument("--out", help="default runs/sweeps/<file name>")
    run.add_argument("--wandb_mode", default="offline", choices=["offline", "online", "disabled"],
                     help="for every run (default offline; `wandb sync` later)")
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra_args = parser.parse_args(argv[:split]), argv[split + 1:]
    engine = SweepEngine(args.engine_venv).ensure()
    if args.command == "setup":
        print(f"W&B's sweep engine: {engine.python}")
    if args.command == "validate":
        problems = 0
        for path in args.files:
            try:
                load_sweep(path, engine)
                print(f"{path}: valid")
            except SweepFileError as error:
                print(f"error: {error}", file=sys.stderr)
                problems += 1
        return 2 if problems else 0
    if args.command == "run":
        try:
            run_sweep(args.file, args.out, count=args.count, extra_args=extra_args, engine=engine,
                      wandb_mode=args.wandb_mode)
        except ValueError as error:  # a SweepFileError, or arguments the sweep refuses
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"results: {Path(args.out or Path('runs/sweeps') / Path(args.file).stem) / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
