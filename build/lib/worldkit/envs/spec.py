"""Environment ids: one string names an env in any of the three families.

Accepted forms (the family prefix is optional where the id is unambiguous)::

    gym:Walker2d-v4        Walker2d-v4             any gymnasium id (state observations)
    miniworld:Sidewalk     MiniWorld-Sidewalk-v0   every registered MiniWorld id (pixels)
    dmc:walker-walk        dm_control/walker-walk-v0   dm-control <domain>-<task>, state or pixels
"""

import difflib
from dataclasses import dataclass

FAMILIES = ("gym", "miniworld", "dmc")
OBS_KINDS = ("state", "pixels")
FAMILY_HELP = (
    "gym:<gymnasium id> (e.g. gym:Walker2d-v4), miniworld:<name> (e.g. miniworld:Sidewalk), "
    "dmc:<domain>-<task> (e.g. dmc:walker-walk)"
)


class UnknownEnvError(ValueError):
    """The id names no environment worldkit can build."""


@dataclass(frozen=True)
class EnvSpec:
    """A parsed environment id: family, name within it, and observation kind."""

    family: str
    name: str
    obs: str

    def __str__(self) -> str:
        default = "pixels" if self.family == "miniworld" else "state"
        suffix = "" if self.obs == default else f"?obs={self.obs}"
        return f"{self.family}:{self.name}{suffix}"

    @property
    def gym_id(self) -> str:
        """The id gymnasium's registry knows this env by."""
        if self.family == "miniworld":
            return f"MiniWorld-{self.name}-v0"
        if self.family == "dmc":
            return f"dm_control/{self.name}-v0"
        return self.name


def parse_spec(spec: "str | EnvSpec", obs: str | None = None) -> EnvSpec:
    """Parse an id in any accepted form; ``obs`` overrides an ``?obs=`` suffix."""
    if isinstance(spec, EnvSpec):
        return spec if obs is None else EnvSpec(spec.family, spec.name, _check_obs(obs))
    text, _, query = spec.strip().partition("?")
    if query:
        key, _, value = query.partition("=")
        if key != "obs":
            raise UnknownEnvError(f"{spec!r}: the only option an id takes is '?obs=state|pixels'")
        obs = obs or value
    family, name = _split_family(text)
    if family is None:
        raise UnknownEnvError(_unknown_message(spec))
    default = "pixels" if family == "miniworld" else "state"
    parsed = EnvSpec(family, name, _check_obs(obs or default))
    if parsed.family == "miniworld" and parsed.obs != "pixels":
        raise ValueError(f"{spec!r}: MiniWorld environments only have pixel observations")
    return parsed


def _split_family(text: str) -> tuple[str | None, str]:
    if ":" in text:
        family, name = text.split(":", 1)
        if family not in FAMILIES:
            raise UnknownEnvError(f"Unknown env family {family!r} in {text!r}. Families: {FAMILY_HELP}")
        if family == "miniworld" and name.startswith("MiniWorld-"):
            name = name.removeprefix("MiniWorld-").removesuffix("-v0")
        if not _exists(family, name):
            raise UnknownEnvError(_unknown_message(text))
        return family, name
    if text.startswith("MiniWorld-") and text.endswith("-v0"):
        name = text.removeprefix("MiniWorld-").removesuffix("-v0")
        return ("miniworld", name) if _exists("miniworld", name) else (None, text)
    if text.startswith("dm_control/") and text.endswith("-v0"):
        name = text.removeprefix("dm_control/").removesuffix("-v0")
        return ("dmc", name) if _exists("dmc", name) else (None, text)
    return ("gym", text) if _exists("gym", text) else (None, text)


def _check_obs(obs: str) -> str:
    if obs not in OBS_KINDS:
        raise ValueError(f"obs must be one of {OBS_KINDS}, got {obs!r}")
    return obs


def _exists(family: str, name: str) -> bool:
    return name in known_names(family)


def known_names(family: str) -> list[str]:
    """Names worldkit can build in one family (importing that family's package)."""
    import gymnasium as gym

    if family == "gym":
        return [i for i in gym.registry if not i.startswith(("MiniWorld-", "dm_control/"))]
    if family == "miniworld":
        from worldkit.envs.backends import import_miniworld

        import_miniworld()
        return [i[len("MiniWorld-") : -len("-v0")] for i in gym.registry if i.startswith("MiniWorld-")]
    from worldkit.envs.backends import import_dm_control_suite

    return [f"{domain}-{task}" for domain, task in import_dm_control_suite().ALL_TASKS]


def known_ids() -> list[str]:
    """Every id worldkit can build, with its family prefix."""
    return [f"{family}:{name}" for family in FAMILIES for name in known_names(family)]


def _unknown_message(spec: str) -> str:
    bare = spec.split(":", 1)[-1]
    candidates = known_ids()
    by_name = {c.split(":", 1)[1]: c for c in candidates}
    close = difflib.get_close_matches(bare, list(by_name), n=5, cutoff=0.5)
    close = [by_name[c] for c in close] or difflib.get_close_matches(spec, candidates, n=5, cutoff=0.4)
    hint = f" Closest known ids: {', '.join(close)}." if close else ""
    return f"Unknown environment {spec!r}. worldkit knows three families: {FAMILY_HELP}.{hint}"
