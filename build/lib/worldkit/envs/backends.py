"""Imports of the env families' packages, with errors that say how to fix them."""

from types import ModuleType

from worldkit._optional import require


class RenderingError(RuntimeError):
    """An environment could not render headless; the message says how to fix it."""


RENDERING_FIX = (
    "worldkit renders headless through EGL (it sets MUJOCO_GL=egl, PYOPENGL_PLATFORM=egl and "
    "PYGLET_HEADLESS=1 when no DISPLAY exists, unless you set them). To fix: install Mesa's EGL "
    "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri libglu1-mesa), or use software "
    "rendering with MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa (apt-get install libosmesa6), or "
    "run under a virtual display (xvfb-run python ...) with the variables unset."
)


def import_miniworld() -> ModuleType:
    """Import miniworld (registers its gymnasium ids); it opens a GL context on import."""
    return _import_rendering_package("miniworld", "miniworld")


def import_dm_control_suite() -> ModuleType:
    """dm-control checks MUJOCO_GL on import."""
    return _import_rendering_package("dm_control.suite", "dm-control")


def _import_rendering_package(module: str, package: str) -> ModuleType:
    try:
        return require(module, package=package)
    except ImportError:
        raise
    except Exception as error:  # pyglet and dm-control raise their own types for GL trouble
        if looks_like_rendering_failure(error):
            raise RenderingError(f"{package} could not set up rendering: {error!r}. {RENDERING_FIX}") from error
        raise


def import_shimmy() -> ModuleType:
    """shimmy registers the dm_control/<domain>-<task>-v0 ids with gymnasium."""
    return require("shimmy", package="shimmy[dm-control]")


def looks_like_rendering_failure(error: BaseException) -> bool:
    """GL errors come from several libraries; recognise them by origin or wording."""
    origin = type(error).__module__ or ""
    text = f"{type(error).__name__} {error}"
    return origin.startswith(("pyglet", "OpenGL", "glfw", "mujoco", "dm_control._render")) or any(
        word in text for word in ("EGL", "OpenGL", "MUJOCO_GL", "GLFW", "display", "gladLoadGL")
    )
