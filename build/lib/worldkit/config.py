"""Typed recipe configs from the command line.

Every recipe describes its settings as a dataclass and calls :func:`parse_config`. Flags keep
the field names (``--total_steps``, not ``--total-steps``) and booleans take a value
(``--progress=False``), so the ``--name=value`` command lines a W&B sweep agent writes work unchanged.
"""

from collections.abc import Sequence
from typing import TypeVar

import tyro

ConfigT = TypeVar("ConfigT")


def parse_config(config_class: type[ConfigT], args: Sequence[str] | None = None, default: ConfigT | None = None) -> ConfigT:
    """Parse ``args`` (default: ``sys.argv[1:]``) into ``config_class``; ``--help`` lists every flag."""
    return tyro.cli(
        config_class,
        args=args,
        default=default,
        use_underscores=True,
        config=(tyro.conf.FlagConversionOff,),
    )
