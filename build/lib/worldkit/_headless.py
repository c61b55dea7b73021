"""Headless rendering set-up, run before anything imports pyglet or MuJoCo's GL.

With no display, MuJoCo/dm-control and Miniworld (pyglet) both fail to open a GL context
unless told to use EGL. We set the variables only when the user has not, so an explicit
choice (``MUJOCO_GL=osmesa``, a real ``DISPLAY``) always wins.
"""

import os
import sys


def configure_headless_rendering() -> bool:
    """Point MuJoCo and pyglet at EGL when no display exists. Returns True if it did."""
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if has_display or sys.platform in ("darwin", "win32"):
        return False
    for variable, value in (("MUJOCO_GL", "egl"), ("PYOPENGL_PLATFORM", "egl"), ("PYGLET_HEADLESS", "1")):
        if not os.environ.get(variable):  # an empty value counts as unset
            os.environ[variable] = value
    return True
