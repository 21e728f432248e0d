"""Settings objects filled from defaults, a TOML file, the environment and flags.

Later sources win: a flag beats an environment variable, which beats the file.
Each settings class is a dataclass; its field types say how text is converted.
"""

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from storage_server.quantity import parse_size

DEFAULT_CONFIG = Path("/etc/netvol/netvol.toml")
CONFIG_ENV = "NETVOL_CONFIG"

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


class Size(int):
    """A byte count that may be written in quantity notation (5Gi) in files and env."""


def config_path(flag: str | None) -> Path | None:
    """The configuration file to read, or None when there is none."""
    if flag:
        return Path(flag)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def _read_section(path: Path | None, section: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    values = document.get(section, {})
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: [{section}] must be a table")
    return values


def _convert(name: str, kind: Any, raw: Any) -> Any:
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if kind is Size:
            return Size(raw if isinstance(raw, int) else parse_size(str(raw)))
        if kind is bool and isinstance(raw, str):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"expected true or false, got {raw!r}")
            return raw.lower() in ("1", "true", "yes")
        if kind in (int, float):
            return kind(raw)
        if kind is Path:
            return Path(raw)
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}") from exc


def load(
    cls: type[T],
    *,
    section: str,
    env_prefix: str,
    flags: dict[str, Any],
    config_file: str | None = None,
) -> T:
    """Build `cls` from its defaults, then the file's [section], env, then non-None flags."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    file_values = _read_section(config_path(config_file), section)
    unknown = set(file_values) - names
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(file_values)
    for name in names:
        env = os.environ.get(f"{env_prefix}{name.upper()}")
        if env is not None and env != "":
            values[name] = env
        if flags.get(name) is not None:
            values[name] = flags[name]
    converted = {k: _convert(k, hints[k], v) for k, v in values.items()}
    return cls(**converted)
