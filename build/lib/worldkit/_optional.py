"""Imports of optional packages that fail with the pip command that fixes them."""

import importlib
from types import ModuleType


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names what to install."""


def require(module: str, *, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error naming the extra (or package) that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        fix = f"pip install 'worldkit[{extra}]'" if extra else f"pip install {package or module}"
        raise MissingDependencyError(
            f"This needs the Python package '{package or module}', which is not importable "
            f"({error}). Install it with: {fix}"
        ) from error
