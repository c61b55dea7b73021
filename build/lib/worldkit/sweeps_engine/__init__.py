"""W&B's sweep engine (the PyPI package ``sweeps``) in a virtualenv of its own.

``sweeps`` pins ``numpy<2`` and worldkit needs numpy 2, so the two cannot share an environment.
The engine lives in a small virtualenv, created on first use, and worldkit talks to it through
one subprocess per question, exchanging JSON: a sweep config and the finished runs go in, schema
errors or the next run's parameters come out. The grid, random and Bayesian searches are
therefore W&B's own, the same code a W&B server runs for ``wandb agent``.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

ENGINE_REQUIREMENT = "sweeps==0.3.0"
"""The engine version worldkit is tested with."""

_WORKER = Path(__file__).with_name("worker.py")


def default_venv() -> Path:
    """``$WORLDKIT_SWEEPS_VENV`` if set, else ``~/.cache/worldkit/sweeps-venv`` (XDG cache)."""
    if os.environ.get("WORLDKIT_SWEEPS_VENV"):
        return Path(os.environ["WORLDKIT_SWEEPS_VENV"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "worldkit" / "sweeps-venv"


class SweepEngine:
    """The engine behind a JSON pipe.

    Args:
        venv: the engine's virtualenv; any environment with ``sweeps`` installed will do.
            Default: :func:`default_venv`. Created by :meth:`ensure` when it does not exist.
    """

    def __init__(self, venv: str | Path | None = None):
        self.venv = Path(venv).expanduser() if venv else default_venv()

    @property
    def python(self) -> Path:
        return self.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def ensure(self) -> "SweepEngine":
        """Create the virtualenv (``pip install sweeps``, PyPI needed once) if it is missing.

        It is built beside its final path and moved there when complete, so an interrupted
        set-up or two processes setting up at once never leave a half-made engine behind.
        """
        if self.python.exists():
            return self
        if self.venv.exists():
            raise FileExistsError(f"{self.venv} holds no Python environment: delete it, or choose another place")
        partial = self.venv.with_name(f"{self.venv.name}.partial-{os.getpid()}")
        print(f"worldkit: setting up W&B's sweep engine in {self.venv} (pip install {ENGINE_REQUIREMENT}, once)",
              file=sys.stderr, flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(partial)
            python = partial / self.python.relative_to(self.venv)
            install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                      ENGINE_REQUIREMENT], capture_output=True, text=True)
            if install.returncode != 0:
                raise RuntimeError(f"could not install {ENGINE_REQUIREMENT} into {partial}:\n{install.stderr[-3000:]}")
            partial.replace(self.venv)
        except OSError:
            if not self.python.exists():  # a real failure, not another process finishing first
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return self

    def validate(self, config: dict[str, Any]) -> list[str]:
        """Every problem the engine finds in a sweep config (its JSON schema, then a trial suggestion)."""
        return self._ask({"op": "validate", "config": config})["errors"]

    def next_params(self, config: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The next run's parameters given the runs so far, or ``None`` when a grid is done.

        Each run is a ``sweeps.SweepRun`` as a dict: ``name``, ``state`` (``finished``/``failed``),
        ``config`` (``{param: {"value": v}}``), ``summary_metrics`` and ``history``.
        """
        return self._ask({"op": "next", "config": config, "runs": runs})["params"]

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.python.exists():
            raise FileNotFoundError(f"no sweep engine at {self.venv}: call SweepEngine.ensure() "
                                    "or run `python -m worldkit.sweeps setup`")
        # -I: neither PYTHONPATH nor the user's site-packages (numpy 2) can leak into the engine
        reply = subprocess.run([str(self.python), "-I", "-W", "ignore", str(_WORKER)], input=json.dumps(request),
                               capture_output=True, text=True, timeout=300)
        if reply.returncode != 0:
            raise RuntimeError(f"W&B's sweep engine in {self.venv} failed (delete that folder to have it set up "
                               f"again):\n{reply.stderr[-3000:]}")
        return json.loads(reply.stdout)
