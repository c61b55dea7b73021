"""The documentation builds without a warning (mkdocs --strict fails on any)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # material's notice about a future MkDocs
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "envs" / "index.html").exists()
