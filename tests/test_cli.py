"""The ``worldkit`` command and run folders as a user meets them: real processes, real runs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio

from worldkit.cli import main
from worldkit.runs.folder import hold_run_dir, run_dir_holder

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # user_envs: a user's own registered env
TINY = ["--preset=tiny", "--prefill=200", "--wandb_mode=disabled", "--progress=False"]


def worldkit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worldkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


def dreamer(run_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, str(ROOT / "recipes" / "dreamer.py"), f"--run_dir={run_dir}", *TINY, *flags]


def test_eval_runs_and_dream_on_a_trained_pixel_agent(tmp_path, capsys):
    """A Dreamer agent trained on MiniWorld pixels with Discrete actions, then watched: its return
    and video, its world model's dream beside the real frames, and where its run stands."""
    run = tmp_path / "sidewalk"
    trained = subprocess.run(dreamer(run, "--env=miniworld:Sidewalk", "--total_steps=300"), capture_output=True,
                             text=True, timeout=300, cwd=ROOT, env=ENV)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run / "evaluation.mp4").exists()

    main(["eval", str(run), "--episodes=1", "--seed=5", f"--video={tmp_path / 'agent.mp4'}"])
    assert "return over 1 episodes of miniworld:Sidewalk (seeds 5-5)" in capsys.readouterr().out
    assert imageio.get_reader(tmp_path / "agent.mp4").get_data(0).shape == (64, 64, 3)

    main(["dream", str(run / "checkpoints" / "world_model"), "--steps=12", f"--video={tmp_path / 'dream.mp4'}"])
    reader = imageio.get_reader(tmp_path / "dream.mp4")
    assert reader.count_frames() == 12 and reader.get_data(0).shape == (64, 128, 3)  # real | dreamed

    main(["runs", str(tmp_path)])
    assert f"{run}: finished; step" in capsys.readouterr().out
    main(["checkpoints"])
    assert "walker2d-wm" in (out := capsys.readouterr().out) and "LatentMLPWorldModel" in out


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path):
    result = worldkit("eval", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    recipe = subprocess.run(dreamer(tmp_path, "--env=gym:Walker3d-v4"), capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=ENV)
    assert recipe.returncode == 2 and "Traceback" not in recipe.stderr and "Unknown environment" in recipe.stderr


def test_one_writer_per_run_folder_and_a_killed_writer_is_taken_over(tmp_path):
    run = tmp_path / "run"
    corridor = ["--env=WorldkitCorridor-v0", "--env_module=user_envs"]
    first = subprocess.Popen(dreamer(run, *corridor, "--total_steps=1000000"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    try:
        lock = run / ".writer.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the first run never took its folder"
            time.sleep(0.2)
        second = subprocess.run(dreamer(run, *corridor, "--total_steps=1000000"), capture_output=True, text=True,
                                timeout=120, cwd=ROOT, env=ENV)
        assert second.returncode == 2
        assert f"in use by another run (process {first.pid})" in second.stderr and "Traceback" not in second.stderr
        assert run_dir_holder(run) == str(first.pid)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stderr.close()
    assert run_dir_holder(run) is None  # the kernel dropped the dead writer's lock
    hold_run_dir(run)  # and the folder is taken over at once
    assert (run / ".writer.lock").read_text().strip() == str(os.getpid())
