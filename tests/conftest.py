"""Test-wide settings: W&B never touches the network, and each test process keeps torch to one core."""

import os
import subprocess
import sys
import textwrap

import pytest

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One test process per core: a second torch thread in each would only wait on the other process
    # (set before torch is imported, so recipes started from tests inherit it).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import worldkit  # noqa: E402,F401  (sets headless rendering before any env is imported)


@pytest.fixture
def run_python():
    """Run a snippet in a fresh interpreter (for import-time and environment-variable behaviour)."""

    def run(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True, text=True, env=full_env, timeout=timeout,
        )

    return run


@pytest.fixture(scope="module")
def one_torch_thread():
    """For files of small models (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    they gain nothing from a second thread, and when other jobs keep both cores busy, torch's two
    OpenMP threads wait on each other and a step takes up to 20x longer."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
