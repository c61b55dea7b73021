"""Sweep files pass W&B's own engine, recipes take the command line an agent builds from them,
and an offline sweep runs real recipe runs, logged to W&B offline, into a table and a plot.

The engine lives in its own virtualenv (``python -m worldkit.sweeps setup`` prepares it; these
tests create it on first use, which needs PyPI once)."""

import csv
import functools
import importlib.util
import json
import re
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from worldkit.config import parse_config
from worldkit.sweeps import SweepFileError, agent_command, load_sweep, run_sweep
from worldkit.sweeps_engine import SweepEngine

ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((ROOT / "recipes" / "sweeps").glob("*.yaml"))
TINY = ["--total_steps=1024", "--ppo.num_steps=1024", "--eval_every=1024", "--eval_episodes=1",
        "--ppo.update_epochs=1", "--ppo.num_minibatches=4", "--progress=False"]


@pytest.fixture(scope="module")
def engine() -> SweepEngine:
    return SweepEngine().ensure()


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # programs in sweep files are relative to where the agent runs


def test_every_sweep_file_passes_the_engines_schema(engine):
    sweeps = {path.stem: load_sweep(path, engine) for path in SWEEP_FILES}  # every file, any recipe
    walker = ["wm_ppo_walker_latent", "wm_ppo_walker_alpha", "wm_ppo_walker_bayes"]
    for name in walker:
        assert sweeps[name]["metric"] == {"name": "eval/mean_return", "goal": "maximize"}
    assert sweeps["wm_ppo_walker_latent"]["parameters"]["latent_dim"]["values"] == [16, 32, 64]
    assert sweeps["wm_ppo_walker_alpha"]["parameters"]["alpha"]["values"] == [0.0, 0.01, 0.05]
    assert sweeps["wm_ppo_walker_bayes"]["method"] == "bayes"
    for name in ["miniworld_cmaes_vae", "miniworld_cmaes_mdn", "miniworld_cmaes_population"]:
        assert sweeps[name]["metric"] == {"name": "eval/success_rate", "goal": "maximize"}
    assert set(sweeps["miniworld_cmaes_vae"]["parameters"]) == {"vae_beta", "latent_dim"}
    assert set(sweeps["miniworld_cmaes_mdn"]["parameters"]) == {"num_mixtures", "cmaes.temperature"}
    assert "cmaes.population" in sweeps["miniworld_cmaes_population"]["parameters"]


def test_every_recipe_has_a_sweep_file():
    programs = {yaml.safe_load(path.read_text())["program"] for path in SWEEP_FILES}
    recipes = {f"recipes/{path.name}" for path in (ROOT / "recipes").glob("*.py")}
    assert recipes - programs == set(), "recipes without a sweep file in recipes/sweeps/"


def test_the_recipe_parses_the_command_line_an_agent_builds(engine):
    for path in SWEEP_FILES:
        sweep = load_sweep(path, engine)
        params = engine.next_params(sweep, [])
        command = agent_command(sweep, params)
        assert command[:3] == ["/usr/bin/env", "python", sweep["program"]]
        assert all(arg.startswith("--") and "=" in arg for arg in command[3:])
        config = parse_config(_import(sweep["program"]).Config, command[3:])
        assert config.wandb_mode == "online"  # an agent's runs must reach the server
        for name, value in params.items():
            parsed = config
            for part in name.split("."):
                parsed = getattr(parsed, part)
            assert parsed in (value, (value,)), (path.name, name)  # `seeds` is a tuple flag given one value


def test_a_broken_sweep_file_is_refused_before_any_run(engine, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({
        "program": "recipes/wm_ppo_walker.py", "method": "grid",
        "metric": {"name": "eval/mean_return", "goal": "maximise"},
        "parameters": {"latent_dim": {"values": [16, 32]}, "ppo": {"parameters": {"clip_coef": {"values": [0.1]}}}},
    }))
    result = subprocess.run([sys.executable, "-m", "worldkit.sweeps", "run", str(broken), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "'maximise' is not one of ['minimize', 'maximize']" in result.stderr  # the engine's schema
    assert "parameter 'ppo' is nested" in result.stderr  # worldkit's own check
    assert not (tmp_path / "out").exists()
    broken.write_text(yaml.safe_dump({"program": "recipes/wm_ppo_walker.py", "method": "grid",
                                      "metric": {"name": "eval/mean_return"},
                                      "parameters": {"alpha": {"min": 0.0, "max": 0.05}}}))
    with pytest.raises(SweepFileError, match="disallowed type with grid search"):  # beyond the schema
        load_sweep(broken, engine)


def test_an_offline_sweep_carries_on_and_records_failed_runs(engine, tmp_path):
    program = tmp_path / "toy.py"  # a real program on the recipe contract, quicker than a recipe
    program.write_text(textwrap.dedent("""
        import sys
        from dataclasses import dataclass
        from worldkit.config import parse_config
        from worldkit.tracking import RunLogger

        @dataclass
        class Config:
            x: int = 0
            run_dir: str = "."
            wandb_mode: str = "offline"

        config = parse_config(Config)
        if config.x == 3:
            sys.exit("three is refused")
        with RunLogger(config.run_dir, config, mode=config.wandb_mode) as log:
            log.log({"score": -(config.x - 2) ** 2}, step=0)
    """))
    sweep_file = tmp_path / "toy.yaml"
    sweep_file.write_text(yaml.safe_dump({"program": str(program), "method": "grid",
                                          "metric": {"name": "score", "goal": "maximize"},
                                          "parameters": {"x": {"values": [1, 2, 3, 4]}}}))
    out = tmp_path / "out"
    sweep = functools.partial(run_sweep, sweep_file, out, engine=engine, wandb_mode="disabled")
    first = sweep(count=2)
    assert [(run.params["x"], run.metric) for run in first] == [(1, -1), (2, 0)]
    # started again, the sweep asks the engine with the runs so far and goes on to the end of the grid
    runs = sweep()
    assert [(run.name, run.params["x"], run.state) for run in runs] == [
        ("run-000", 1, "finished"), ("run-001", 2, "finished"), ("run-002", 3, "failed"), ("run-003", 4, "finished")]
    assert "three is refused" in (out / "run-002" / "output.log").read_text()
    assert (out / "results.md").read_text().splitlines()[2].startswith("| run-001 | finished | 2 | 0 |")  # best first
    # a run recorded as started but never ended (a killed sweep) is started again with its parameters
    with open(out / "runs.jsonl", "a") as handle:
        handle.write(json.dumps({"name": "run-004", "params": {"x": 0}}) + "\n")
    runs = sweep(count=5)
    assert (runs[-1].name, runs[-1].state, runs[-1].metric) == ("run-004", "finished", -4)


@pytest.fixture(scope="module")
def offline_sweep(engine, tmp_path_factory) -> Path:
    """Two runs of the latent-size ablation on a tiny budget, through the command line users type."""
    out = tmp_path_factory.mktemp("sweep")
    result = subprocess.run([sys.executable, "-m", "worldkit.sweeps", "run", "recipes/sweeps/wm_ppo_walker_latent.yaml",
                             "--count", "2", "--out", str(out), "--", *TINY],
                            cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_an_offline_sweep_runs_the_recipe_and_tabulates_its_metric(offline_sweep):
    rows = list(csv.DictReader((offline_sweep / "results.csv").open()))
    assert [(row["run"], row["state"]) for row in rows] == [("run-000", "finished"), ("run-001", "finished")]
    assert len({(row["latent_dim"], row["seeds"]) for row in rows}) == 2  # two different grid points
    for row in rows:
        [seed_dir] = (offline_sweep / row["run"]).glob("Walker2d-v4-wm_ppo-seed*")
        config = json.loads((seed_dir / "config.json").read_text())
        # the swept flags, the extra flags and the runner's own flags all reached the recipe
        assert (config["latent_dim"], config["seeds"], config["total_steps"], config["wandb_mode"]) == (
            int(row["latent_dim"]), [int(row["seeds"])], 1024, "offline")
        summary = json.loads((seed_dir / "summary.json").read_text())
        assert float(row["eval/mean_return"]) == pytest.approx(summary["final_eval_return"])
    picture = matplotlib.image.imread(offline_sweep / "results.png")
    assert picture.shape[0] > 200 and picture.shape[1] > 2 * picture.shape[0]  # one panel per swept parameter


def test_wandb_offline_records_config_metrics_and_media(offline_sweep):
    [run_file] = (offline_sweep / "run-000").glob("*/wandb/offline-run-*/run-*.wandb")
    records = list(_wandb_records(run_file))
    [run] = [r.run for r in records if r.HasField("run")]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["latent_dim"] == 16 and config["total_steps"] == 1024 and config["ppo"]["num_steps"] == 1024
    assert "sweep:wm_ppo_walker_latent" in run.tags
    history = [{"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in r.history.item}
               for r in records if r.HasField("history")]
    evaluations = [row["eval/mean_return"] for row in history if "eval/mean_return" in row]
    summary = json.loads((run_file.parents[2] / "summary.json").read_text())
    assert evaluations == [pytest.approx(summary["final_eval_return"])]
    assert {"policy_loss", "world_model/loss"} <= set().union(*history)
    assert config["alpha"] == 0.01 and config["preset"] == "paper"  # the sweep ablates the draft's settings
    media = [file.path for r in records if r.HasField("files")
             for file in r.files.files if file.path.startswith("media/")]
    assert sorted(re.sub(r"_\d+_[0-9a-f]+\.png$", "", path.split("/")[-1]) for path in media) == [
        "gait", "latent_tsne", "learning_curve"]
    assert all((run_file.parent / "files" / path).stat().st_size > 1000 for path in media)
    [artifact] = [r.artifact for r in records if r.HasField("artifact")]
    assert (artifact.type, artifact.name) == ("model", "Walker2d-v4-world-model")
    assert any(r.HasField("exit") for r in records)  # the run was closed, so `wandb sync` takes it whole


def _wandb_records(path: Path):
    """The protobuf records of an offline run file (W&B's LevelDB-style log: 32 KiB blocks of
    checksummed chunks), read with the installed wandb's own message types."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block = path.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B" and struct.unpack("<HB", data[4:7]) == (0xBEE1, 0)
    position, pending = 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # too little room left for a chunk header: padding
            position += block - position % block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk = data[position + 7:position + 7 + length]
        if kind == 0:
            break  # zero-filled tail
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum
        position, pending = position + 7 + length, pending + chunk
        if kind in (1, 4):  # a full record, or the last chunk of one
            yield Record.FromString(pending)
            pending = b""


def _import(program: str):
    """A recipe script as a module (registered, so that tyro can read its docstrings)."""
    spec = importlib.util.spec_from_file_location(Path(program).stem, ROOT / program)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
