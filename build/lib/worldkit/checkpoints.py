"""One checkpoint format for every world model and controller.

A checkpoint is a folder holding ``model.safetensors`` (the weights) and ``config.json`` (the class,
its hyperparameters, the env and spaces it was trained on, versions, the command that made it and
its metrics), with an optional ``README.md`` model card. Loading it never unpickles anything, so a
checkpoint from the internet cannot run code. Lightning ``.ckpt`` files load too, through
``torch.load(weights_only=True)``.

A class becomes checkpointable by being decorated with :func:`checkpointable`; loading only ever
builds registered classes, as ``cls(**hparams)``.
"""

import importlib
import json
import os
import pickle
import platform
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import worldkit
from worldkit import spaces
from worldkit.files import sync_to_disk
from worldkit.spaces import space_from_dict, space_to_dict, spaces_match

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ClassMismatchError",
    "CorruptCheckpointError",
    "ForeignCheckpointError",
    "SpaceMismatchError",
    "UnknownClassError",
    "UnsafeCheckpointError",
    "build",
    "describe",
    "checkpointable",
    "from_pretrained",
    "save_pretrained",
]

FORMAT = "worldkit-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
CHECKPOINTS_ENV_VAR = "WORLDKIT_CHECKPOINTS"

_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_SPACES = ("observation_space", "action_space")
_REGISTRY: dict[str, type[torch.nn.Module]] = {}
_MOVED = {"worldkit.dream.vae_mdn.VAEMDNWorldModel": "worldkit.models.vae_mdn.VAEMDNWorldModel"}
"""classes saved under an older module path, so checkpoints written then still load"""

_ModuleT = TypeVar("_ModuleT", bound=torch.nn.Module)


class CheckpointError(ValueError):
    """A checkpoint could not be saved or loaded; the message names the file, the problem and the fix."""


class CheckpointNotFoundError(CheckpointError):
    """No file or folder at that path, and no named checkpoint of that name."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle in the file would import or call code, so worldkit refused to unpickle it."""


class CorruptCheckpointError(CheckpointError):
    """A file is truncated, damaged or missing from the folder (an interrupted copy or download)."""


class ForeignCheckpointError(CheckpointError):
    """The files were written by another tool, or in a format version this worldkit does not read."""


class UnknownClassError(CheckpointError):
    """The checkpoint names a class that is not registered with :func:`checkpointable`."""


class ClassMismatchError(CheckpointError):
    """The checkpoint holds a different class from the one asked for."""


class SpaceMismatchError(CheckpointError, spaces.SpaceMismatchError):
    """The model was trained on other observation or action spaces than the ones passed."""


def checkpointable(cls: type[_ModuleT]) -> type[_ModuleT]:
    """Register a ``torch.nn.Module`` subclass so its checkpoints can be loaded by name.

    Loading builds ``cls(**module.hparams)``, so instances need ``self.hparams``: a LightningModule
    gets it from ``self.save_hyperparameters()``, a plain module sets a dict itself. Only registered
    classes are ever built, which is what keeps a checkpoint from choosing what code runs.

    The class also gains ``model.save_pretrained(directory, ...)`` and
    ``Class.from_pretrained(dir_or_name, ...)`` (which checks the checkpoint holds a ``Class``),
    unless it already defines methods of those names.

    Args:
        cls: The module class; it is registered as ``"<module>.<qualified class name>"``.

    Returns:
        The same class, so this works as a decorator.

    Example:
        ```python
        @checkpointable
        class MyWorldModel(lightning.LightningModule):
            def __init__(self, obs_dim: int, hidden: int = 64):
                super().__init__()
                self.save_hyperparameters()
                ...
        ```
    """
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f"@checkpointable applies to torch.nn.Module subclasses, not {cls!r}")
    _REGISTRY[_class_name(cls)] = cls
    if not hasattr(cls, "save_pretrained"):
        cls.save_pretrained = save_pretrained
    if not hasattr(cls, "from_pretrained"):
        cls.from_pretrained = classmethod(_from_pretrained_of_class)
    return cls


def save_pretrained(
    module: torch.nn.Module,
    directory: str | os.PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    dtype: str = "float32",
    card: str | None = None,
) -> Path:
    """Write ``module`` as a checkpoint folder that :func:`from_pretrained` rebuilds exactly.

    The folder is built next to ``directory`` and renamed into place, so an interrupted save
    leaves either the previous checkpoint or the new one, never a mix. An existing checkpoint
    at ``directory`` is replaced as a whole; any other existing, non-empty folder is left alone.

    Args:
        module: An instance of a :func:`checkpointable` class with JSON-serialisable ``hparams``.
            Its ``env_spec``, ``observation_space`` and ``action_space`` attributes are recorded
            when present.
        directory: The checkpoint folder to write.
        metrics: Results to record with the weights (numbers, strings; numpy and torch scalars
            are converted).
        command: The command that trained the model; defaults to this process's ``sys.argv``.
        dtype: ``"float32"``, or ``"float16"`` to halve the size of a checkpoint you ship.
            Floating tensors are stored in this dtype; loading casts them back.
        card: A markdown model card, written to ``README.md``.

    Returns:
        The checkpoint folder.

    Raises:
        CheckpointError: The class is not registered, ``hparams`` is missing or not JSON data,
            ``dtype`` is unknown, or ``directory`` is a folder that is not a checkpoint.
    """
    directory = Path(directory)
    name = _class_name(type(module))
    if _REGISTRY.get(name) is not type(module):
        raise CheckpointError(
            f"{name} is not registered, so a checkpoint of it could not be loaded: decorate the "
            "class with @worldkit.checkpoints.checkpointable"
        )
    hparams = getattr(module, "hparams", None)
    if not isinstance(hparams, Mapping):
        raise CheckpointError(
            f"{name} has no hparams mapping to rebuild it from: call self.save_hyperparameters() "
            "in a LightningModule's __init__, or set self.hparams = {...} (the __init__ arguments)"
        )
    if dtype not in _DTYPES:
        raise CheckpointError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
    env_spec = getattr(module, "env_spec", None)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": name,
        "hparams": _json_data(
            hparams, f"{name}.hparams",
            "pass plain values to __init__, or leave the argument out with "
            "save_hyperparameters(ignore=[...]) and set the attribute after construction",
        ),
        "env_spec": None if env_spec is None else str(env_spec),
        **{key: _space_or_none(getattr(module, key, None)) for key in _SPACES},
        "dtype": dtype,
        "metrics": _json_data(metrics or {}, "metrics", "pass numbers, strings or lists"),
        "command": shlex.join(sys.argv) if command is None else command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "worldkit": worldkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    if directory.exists() and not _replaceable(directory):
        raise CheckpointError(
            f"{directory} exists and is not a worldkit checkpoint, so save_pretrained will not "
            "replace it: pick a new folder"
        )
    weights = {key: _stored(tensor, _DTYPES[dtype]) for key, tensor in module.state_dict().items()}
    texts = {CONFIG_FILE: json.dumps(config, indent=2) + "\n"}
    if card is not None:
        texts[CARD_FILE] = card
    _write_folder(directory, weights, texts)
    return directory


def from_pretrained(
    dir_or_name: str | os.PathLike,
    *,
    expected_class: type[torch.nn.Module] | None = None,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    map_location: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Rebuild a module from a checkpoint folder, a named checkpoint, or a Lightning ``.ckpt``.

    Nothing is unpickled: the folder format is safetensors and JSON, and ``.ckpt`` files go through
    ``torch.load(weights_only=True)``. For a folder, the config, class and spaces are checked
    before any weights are read or any module is built.

    Args:
        dir_or_name: A checkpoint folder, a ``.ckpt`` file, or the name of a folder under the
            named-checkpoints folder: ``$WORLDKIT_CHECKPOINTS`` if set, else ``checkpoints/`` in
            the worldkit repository. A name has no path separator and is not an existing path.
        expected_class: The class (or a base class) the checkpoint must hold. Required for a
            ``.ckpt``, which does not record its class.
        observation_space: If given, must match the observation space the checkpoint records.
        action_space: If given, must match the action space the checkpoint records.
        map_location: Device of the returned module (weights are read on the CPU, so a
            checkpoint saved on a GPU loads anywhere).

    Returns:
        The module, in eval mode, with floating weights in its own dtype. Its ``env_spec`` and
        spaces are restored from the checkpoint where the class did not set them itself.

    Raises:
        CheckpointNotFoundError: No such path or named checkpoint (the message lists the names).
        UnsafeCheckpointError: A ``.ckpt``/``.pt`` holds a pickle that would run code.
        CorruptCheckpointError: A file is truncated, damaged or missing.
        ForeignCheckpointError: The files were not written by worldkit (or Lightning).
        UnknownClassError: The checkpoint names a class that is not registered.
        ClassMismatchError: The checkpoint holds another class than ``expected_class``.
        SpaceMismatchError: The recorded spaces differ from the ones passed.
        CheckpointError: The weights do not fit the class rebuilt from the hyperparameters.
    """
    path = _resolve(dir_or_name)
    given = {"observation_space": observation_space, "action_space": action_space}
    if path.is_file():
        hparams, state = _read_lightning_checkpoint(path, expected_class)
        module = _build(expected_class, hparams, state, path)
        _check_spaces(path, {key: getattr(module, key, None) for key in _SPACES}, given, None)
    else:
        config = _read_config(path)
        config_file = path / CONFIG_FILE
        cls = _resolve_class(config["class"], expected_class, config_file)
        recorded = _recorded_spaces(config, config_file)
        _check_spaces(path, recorded, given, config.get("env_spec"))
        module = _build(cls, config["hparams"], _read_weights(path / WEIGHTS_FILE), path)
        for key, value in {"env_spec": config.get("env_spec"), **recorded}.items():
            if value is not None and getattr(module, key, None) is None:
                setattr(module, key, value)
    return module.to(map_location).eval()


def describe(module: torch.nn.Module) -> dict[str, Any]:
    """``{"class": name, "hparams": ...}`` of a :func:`checkpointable` module: what :func:`build`
    rebuilds it from (with fresh weights), for a module that holds others (an agent's parts)."""
    name = _class_name(type(module))
    if _REGISTRY.get(name) is not type(module):
        raise CheckpointError(f"{name} is not registered: decorate the class with @worldkit.checkpoints.checkpointable")
    return {"class": name, "hparams": _json_data(dict(module.hparams), f"{name}.hparams", "pass plain values to __init__")}


def build(description: Mapping[str, Any]) -> torch.nn.Module:
    """A fresh module of a registered class from :func:`describe`'s description."""
    cls = _resolve_class(str(description["class"]), None, Path("<description>"))
    return cls(**description["hparams"])


def _from_pretrained_of_class(cls, dir_or_name: str | os.PathLike, **kwargs: Any) -> torch.nn.Module:
    """Load a checkpoint that must hold this class (or a subclass); see :func:`from_pretrained`."""
    return from_pretrained(dir_or_name, expected_class=cls, **kwargs)


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_data(mapping: Mapping[str, Any], what: str, fix: str) -> dict[str, Any]:
    """Return ``mapping`` as JSON data (numpy and torch values become lists), naming any key that is not."""
    data = {}
    for key, value in mapping.items():
        try:
            data[key] = json.loads(json.dumps(value, default=_tolist))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{what}[{key!r}] is not JSON data ({error}): {fix}") from error
    return data


def _tolist(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _stored(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A CPU copy (safetensors refuses tensors sharing memory, as tied weights do).

    Only a float16 save changes dtypes; otherwise every tensor keeps its own (float64 running
    statistics stay float64, so the round trip is exact for them too).
    """
    dtype = dtype if tensor.is_floating_point() and dtype == torch.float16 else tensor.dtype
    return tensor.detach().to(device="cpu", dtype=dtype, copy=True).contiguous()


def _space_or_none(space: gym.Space | None) -> dict[str, Any] | None:
    return None if space is None else space_to_dict(space)


def _replaceable(directory: Path) -> bool:
    """An empty folder, or one whose config.json says it is ours (anything else may be the user's)."""
    if not directory.is_dir():
        return False
    if not any(directory.iterdir()):
        return True
    try:
        return json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_folder(directory: Path, weights: dict[str, torch.Tensor], texts: dict[str, str]) -> None:
    """Write the files into a sibling staging folder, flush them to disk, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".saving", dir=directory.parent))
    try:
        save_file(weights, staging / WEIGHTS_FILE)
        for file_name, text in texts.items():
            (staging / file_name).write_text(text, encoding="utf-8")
        for file in staging.iterdir():
            sync_to_disk(file)
        _swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, directory: Path) -> None:
    """Rename ``staging`` to ``directory``, moving an old checkpoint aside first and back on failure."""
    if not directory.exists():
        os.rename(staging, directory)
        return
    retired = staging.with_name(staging.name + ".replaced")
    os.rename(directory, retired)
    try:
        os.rename(staging, directory)
    except BaseException:
        os.rename(retired, directory)
        raise
    shutil.rmtree(retired)


def _checkpoints_root() -> Path:
    """``$WORLDKIT_CHECKPOINTS``, else the source checkout's ``checkpoints/``, else the copy an
    installed wheel carries (``worldkit/pretrained``)."""
    configured = os.environ.get(CHECKPOINTS_ENV_VAR)
    if configured:
        return Path(configured)
    package = Path(worldkit.__file__).resolve().parent
    source = package.parent / "checkpoints"
    return source if source.is_dir() else package / "pretrained"


def _resolve(dir_or_name: str | os.PathLike) -> Path:
    """The path itself if it exists; else, for a bare name, that folder under the checkpoints root."""
    path = Path(dir_or_name)
    if path.exists():
        return path
    text = str(dir_or_name)
    if not isinstance(dir_or_name, str) or any(sep and sep in text for sep in ("/", os.sep, os.altsep)):
        raise CheckpointNotFoundError(f"no checkpoint file or folder at {path}")
    root = _checkpoints_root()
    if (root / text).is_dir():
        return root / text
    names = sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file()) if root.is_dir() else []
    raise CheckpointNotFoundError(
        f"{text!r} is not an existing path, nor a checkpoint name in {root} (names there: "
        f"{', '.join(names) or 'none'}). Pass a folder or .ckpt path, or set {CHECKPOINTS_ENV_VAR} "
        "to the folder that holds your named checkpoints."
    )


def _read_config(folder: Path) -> dict[str, Any]:
    file = folder / CONFIG_FILE
    if not file.is_file():
        raise ForeignCheckpointError(
            f"{folder} has no {CONFIG_FILE}, so it is not a worldkit checkpoint folder (a Lightning "
            ".ckpt is a file: pass the file's path)"
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise CorruptCheckpointError(
            f"{file} is not valid JSON ({error}); it is truncated or damaged: copy the checkpoint "
            "again, or save it again"
        ) from error
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ForeignCheckpointError(
            f"{file} lacks the \"format\": \"{FORMAT}\" marker, so it was written by another tool, "
            "not worldkit: load the model with that tool, then save it with save_pretrained"
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise ForeignCheckpointError(
            f"{file} is format version {config.get('format_version')!r}, and this worldkit reads "
            f"version {FORMAT_VERSION}: use the worldkit version in its \"versions\" entry"
        )
    if not (isinstance(config.get("class"), str) and isinstance(config.get("hparams"), dict)):
        raise CorruptCheckpointError(f"{file} lacks a \"class\" name or an \"hparams\" object: save it again")
    return config


def _resolve_class(
    name: str, expected_class: type[torch.nn.Module] | None, config_file: Path
) -> type[torch.nn.Module]:
    name = _MOVED.get(name, name)
    if expected_class is not None and name == _class_name(expected_class):
        return expected_class
    cls = _REGISTRY.get(name) or _import_registered(name)
    if cls is None:
        raise UnknownClassError(
            f"{config_file} names the class {name!r}, which is not registered with @checkpointable: "
            "import the module that defines it first (worldkit imports modules under worldkit. "
            "by itself, and never a module named by a file)"
        )
    if expected_class is not None and not issubclass(cls, expected_class):
        raise ClassMismatchError(
            f"{config_file} holds a {name}, not a {_class_name(expected_class)}: load it with "
            f"{cls.__name__}.from_pretrained, or pick a checkpoint of {expected_class.__name__}"
        )
    return cls


def _import_registered(name: str) -> type[torch.nn.Module] | None:
    """Import the worldkit module a class name points into, so its @checkpointable runs; nothing else."""
    module = name.rpartition(".")[0]
    if module.startswith("worldkit."):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is None or not (module == error.name or module.startswith(error.name + ".")):
                raise  # the module exists but needs something missing: that error says what
    return _REGISTRY.get(name)


def _recorded_spaces(config: dict[str, Any], config_file: Path) -> dict[str, gym.Space | None]:
    spaces = {}
    for key in _SPACES:
        try:
            spaces[key] = None if config.get(key) is None else space_from_dict(config[key])
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptCheckpointError(
                f"{config_file} has an unreadable {key} ({error!r}): save the checkpoint again"
            ) from error
    return spaces


def _check_spaces(
    source: Path,
    recorded: dict[str, gym.Space | None],
    given: dict[str, gym.Space | None],
    env_spec: str | None,
) -> None:
    """Passed spaces must match the recorded ones; a space the checkpoint does not record is not checked."""
    for key, space in given.items():
        stored = recorded.get(key)
        if space is not None and stored is not None and not spaces_match(stored, space):
            trained_on = f" (it was trained on {env_spec})" if env_spec else ""
            raise SpaceMismatchError(
                f"{source} was trained with {key} {stored}, but {space} was passed: use a checkpoint "
                f"trained on this environment{trained_on}"
            )


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise CorruptCheckpointError(
            f"{file} is missing, so the checkpoint is incomplete: copy the checkpoint again, or save it again"
        )
    try:
        return load_file(file, device="cpu")
    except SafetensorError as error:
        raise CorruptCheckpointError(
            f"{file} is truncated or damaged ({error}): copy the checkpoint again, or save it again"
        ) from error


def _read_lightning_checkpoint(
    file: Path, expected_class: type[torch.nn.Module] | None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Hyperparameters and state_dict of a lightning.Trainer checkpoint, unpickling only plain data."""
    if expected_class is None:
        raise CheckpointError(
            f"{file} is a Lightning checkpoint file, which does not record its class: pass "
            "expected_class=YourModel, or call YourModel.from_pretrained(path)"
        )
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own advice is to allowlist the global; ours is not to, so keep only what it found.
        found = next((line for line in str(error).splitlines() if "WeightsUnpickler" in line), "")
        reason = found.strip().split(". Please use")[0]
        raise UnsafeCheckpointError(
            f"refused to load {file}: its pickle would import or call code, not only tensors and "
            f"plain data ({reason}). worldkit never unpickles code. If you trust the file, load it "
            "yourself with torch.load(weights_only=False) and save the model with save_pretrained."
        ) from error
    except Exception as error:  # a damaged file surfaces as RuntimeError, EOFError, KeyError, ...
        raise CorruptCheckpointError(
            f"{file} is not a readable torch checkpoint ({type(error).__name__}: {error}); it may be "
            "truncated: copy it again, or save it again"
        ) from error
    if not (isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict)):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ForeignCheckpointError(
            f"{file} is not a lightning.Trainer checkpoint (no 'state_dict'; found {keys}): "
            "save models with save_pretrained or Trainer.save_checkpoint"
        )
    return dict(payload.get("hyper_parameters") or {}), payload["state_dict"]


def _build(
    cls: type[torch.nn.Module], hparams: dict[str, Any], state: dict[str, torch.Tensor], source: Path
) -> torch.nn.Module:
    """``cls(**hparams)`` with ``state`` loaded (load_state_dict casts float16 weights to the module's dtype)."""
    try:
        module = cls(**hparams)
    except TypeError as error:
        raise CheckpointError(
            f"could not rebuild {cls.__name__}(**hparams) from {source} ({error}): __init__ changed "
            "since the save, or the model does not call self.save_hyperparameters()"
        ) from error
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"the weights in {source} do not fit {_class_name(cls)}: {error}") from error
    return module
