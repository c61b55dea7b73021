"""Curiosity modules stand alone: controllers may use worldkit.intrinsic, never the reverse."""

import ast
from pathlib import Path

import pytest

import worldkit

INTRINSIC = sorted((Path(worldkit.__file__).parent / "intrinsic").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved against its package)."""
    package = "worldkit.intrinsic"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", INTRINSIC, ids=lambda path: path.name)
def test_intrinsic_modules_import_nothing_from_controllers(path):
    offending = sorted(name for name in imported_modules(path)
                       if name == "worldkit.controllers" or name.startswith("worldkit.controllers."))
    assert not offending, f"{path.name} imports {offending}: move what it needs out of worldkit.controllers"


def test_the_check_catches_an_import_from_controllers(tmp_path):
    module = tmp_path / "curious.py"
    module.write_text("from worldkit.controllers.rollout import PPOHook\nfrom ..controllers import ppo\n")
    assert {"worldkit.controllers.rollout", "worldkit.controllers.ppo"} <= imported_modules(module)
