"""Frozen dataclasses of settings ↔ TOML files ↔ argparse flags, in one place.

Each field of a settings dataclass is a TOML key (`batch_size`, dashes allowed) and a
flag (`--batch-size`); its annotation (`int`, `float | None`, `tuple[int, ...]`, ...)
says how values from either are checked and coerced, and its `help` metadata is the
flag's help. `tyro` would build the flags, but not read TOML nor lay flags over a file
(flags must default to "not given"), so the glue stays here, written once.
"""

import argparse
import dataclasses
import pathlib
import sys
import types
import typing
from typing import Any

from .._checks import InvalidInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def unpack(hint) -> tuple[type, bool, bool]:
    """(element type, is a tuple, optional) of a field annotation."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = True
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def coerce_fields(settings: Any) -> None:
    """Check and coerce every field of the frozen dataclass `settings` in place (for
    `__post_init__`): lists become tuples, ints pass as floats, nothing else is
    converted."""
    where = type(settings).__name__
    hints = typing.get_type_hints(type(settings))
    for field in dataclasses.fields(settings):
        base, many, optional = unpack(hints[field.name])
        value = getattr(settings, field.name)
        if value is None:
            if not optional:
                raise InvalidInputError(f"{where}: `{field.name}` must not be None.")
            continue
        try:
            if many:
                items = value if isinstance(value, (list, tuple)) else [value]
                value = tuple(_scalar(base, item) for item in items)
            else:
                value = _scalar(base, value)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(
                f"{where}: `{field.name}` must be {'a list of ' if many else ''}"
                f"{base.__name__}, got {value!r}."
            ) from error
        object.__setattr__(settings, field.name, value)


def _scalar(base: type, value: Any) -> Any:
    if base is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if base is int:
        if isinstance(value, bool) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise TypeError(value)
        return int(value)
    if base is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return base(value)  # pragma: no cover


# -- TOML ---------------------------------------------------------------------------
def to_dict(settings: Any) -> dict:
    """The fields as TOML-compatible values (None values omitted)."""
    out = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def to_toml(settings: Any) -> str:
    """The fields as TOML text that `read_toml` reads back."""
    return "".join(
        f"{key} = {_toml_value(value)}\n" for key, value in to_dict(settings).items()
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")  # pragma: no cover


def read_toml(cls: type, path: str | pathlib.Path) -> dict:
    """The settings of a TOML file (a `[train]` table merged into the top level)."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as file:
            values = tomllib.load(file)
    except FileNotFoundError as error:
        raise InvalidInputError(f"{cls.__name__}: no config file {path}.") from error
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(
            f"{cls.__name__}: {path} is not valid TOML: {error}"
        ) from error
    except UnicodeDecodeError as error:
        raise InvalidInputError(
            f"{cls.__name__}: {path} is not UTF-8 text (TOML must be): {error}"
        ) from error
    except OSError as error:
        raise InvalidInputError(
            f"{cls.__name__}: cannot read the config file {path} ({error.strerror})."
        ) from error
    if isinstance(values.get("train"), dict):
        values = {
            **{k: v for k, v in values.items() if k != "train"},
            **values["train"],
        }
    return values


def from_dict(cls: type, values: dict, *, source: str) -> Any:
    """`cls(**values)`, keys with dashes or underscores; unknown keys are refused."""
    names = {field.name for field in dataclasses.fields(cls)}
    clean = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in names:
            raise InvalidInputError(
                f"{cls.__name__}: unknown setting {key!r} in {source}; known "
                f"settings: {', '.join(sorted(names))}."
            )
        clean[name] = value
    return cls(**clean)


# -- flags --------------------------------------------------------------------------
def add_arguments(cls: type, parser: argparse.ArgumentParser) -> None:
    """`--config FILE` and one flag per field of `cls`, all defaulting to None."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML file of settings (flags override it)",
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        base, many, _ = unpack(hints[field.name])
        shown = field.default
        shown = " ".join(map(str, shown)) if isinstance(shown, tuple) else str(shown)
        help_text = f"{field.metadata.get('help', field.name)} (default: {shown})"
        if base is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
            continue
        parser.add_argument(
            flag,
            type=base,
            nargs="+" if many else None,
            default=None,
            metavar=field.name.upper(),
            help=help_text,
        )


def from_namespace(cls: type, namespace: argparse.Namespace) -> Any:
    """Settings from flags added by `add_arguments`: the `--config` file (if any)
    overridden by every flag given."""
    values = vars(namespace)
    config_file = values.get("config")
    settings = read_toml(cls, config_file) if config_file else {}
    names = {field.name for field in dataclasses.fields(cls)}
    # Merged before validation: a flag may supply what the file lacks (data_dir).
    settings.update({k: v for k, v in values.items() if k in names and v is not None})
    return from_dict(cls, settings, source=config_file or "the flags")
