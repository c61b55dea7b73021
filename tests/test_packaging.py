"""A non-editable install works: the wheel carries every package, the shipped checkpoints (loaded
by name from any folder) and the recipes (through the ``worldkit`` command), in a fresh venv."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_named_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    named = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "worldkit").glob("**/__init__.py")}
    assert found <= named, f"add {sorted(found - named)} to [tool.setuptools] packages in pyproject.toml"


def test_the_wheel_installs_and_loads_shipped_checkpoints_from_another_folder(tmp_path):
    isolation = ["--no-build-isolation"] if _has_setuptools(68) else []  # else pip fetches setuptools to build
    had_build = (ROOT / "build").exists()
    try:
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation,
                                "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    finally:
        if not had_build:  # setuptools builds inside the source tree: leave the checkout as it was
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("worldkit-*.whl")
    # A fresh venv with the wheel installed in it; worldkit's dependencies (torch, ...) come from
    # this environment's site-packages, listed after the venv's own, without its editable worldkit.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    venv_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    here = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (venv_site / "dependencies.pth").write_text(here + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(venv_site),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("WORLDKIT_CHECKPOINTS", "PYTHONPATH")}
    code = ("import worldkit; from worldkit.models import LatentMLPWorldModel; "
            "m = LatentMLPWorldModel.from_pretrained('walker2d-wm'); print(worldkit.__file__, m.env_spec)")
    loaded = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=elsewhere,
                            env=env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.startswith(str(venv_site)) and "gym:Walker2d-v4" in loaded.stdout  # the wheel's, not the source's
    listed = subprocess.run([str(python), "-m", "worldkit.cli", "checkpoints"], capture_output=True, text=True,
                            timeout=120, cwd=elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "walker2d-wm" in listed.stdout and "sidewalk-vae" in listed.stdout
    helped = subprocess.run([str(python), "-m", "worldkit.cli", "recipe", "dreamer", "--help"], capture_output=True,
                            text=True, timeout=120, cwd=elsewhere, env=env)
    assert helped.returncode == 0 and "--env" in helped.stdout, helped.stderr[-3000:]
    [entry_points] = venv_site.glob("worldkit-*.dist-info/entry_points.txt")
    assert "worldkit = worldkit.cli:main" in entry_points.read_text()  # the `worldkit` command of an install


def _has_setuptools(major: int) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("setuptools").split(".")[0]) >= major
    except PackageNotFoundError:
        return False
