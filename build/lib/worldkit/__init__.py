"""worldkit: latent world models for reinforcement learning, with pluggable dreaming."""

from worldkit._headless import configure_headless_rendering

configure_headless_rendering()  # must run before pyglet or MuJoCo's GL is imported

__version__ = "0.1.0"
