"""Config files for CLI commands: read JSON or TOML, then merge with the flags.

Precedence, lowest first: the command's defaults, the config file, flags given explicitly on the command
line. Keys are the flag names with ``-`` or ``_`` (``hidden-sizes`` or ``hidden_sizes``); an unknown key is
an error naming it and listing the allowed keys. Relative paths in the file are taken relative to the file's
folder, so a config file and its data can move together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click
import tomllib
from click.core import ParameterSource

from sparsexc.errors import ConfigurationError

__all__ = ["merge_config", "read_config_file"]

_EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a ``.toml`` file (via tomllib) or a JSON file (any other suffix).

    Raises
    ------
    ValueError
        If the file does not parse or does not hold a mapping at the top level (message names the file
        and, for JSON, the line).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: a config file must hold a mapping of option names to values")
    return data


def merge_config(
    ctx: click.Context,
    config: Mapping[str, Any],
    config_path: str | Path,
    *,
    path_keys: Iterable[str] = (),
    exclude: Iterable[str] = ("config",),
) -> dict[str, Any]:
    """The command's parameter values with ``config`` filled in where no flag was given explicitly.

    Parameters
    ----------
    ctx : click.Context
        The running command's context (its ``params`` hold the parsed flags).
    config : mapping
        Keys as in the file (``-`` or ``_``), values as JSON/TOML gives them; each value goes through the
        option's own click type, so it is checked exactly like the flag.
    config_path : path
        The file the mapping came from (for messages, and as the base of relative paths).
    path_keys : names of options holding file paths, resolved relative to the file's folder.
    exclude : names of options that may not appear in the file.
    """
    excluded = set(exclude)
    params = {p.name: p for p in ctx.command.params if p.name and p.name not in excluded}
    values = dict(ctx.params)
    base = Path(config_path).resolve().parent
    for raw_key, raw_value in config.items():
        key = str(raw_key).replace("-", "_")
        param = params.get(key)
        if param is None:
            allowed = ", ".join(sorted(name.replace("_", "-") for name in params))
            raise click.UsageError(f"{config_path}: unknown key {raw_key!r}; allowed keys: {allowed}", ctx)
        if ctx.get_parameter_source(key) in _EXPLICIT:
            continue  # an explicit flag wins over the file
        value = raw_value
        if getattr(param, "multiple", False) and isinstance(value, Mapping):
            value = list(value.items())  # e.g. head-param = {threshold = 0.5}
        elif getattr(param, "multiple", False) and not isinstance(value, (list, tuple)):
            value = [value]
        if key in path_keys and isinstance(value, str) and value and not Path(value).is_absolute():
            value = str(base / value)
        try:
            values[key] = param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise click.UsageError(f"{config_path}: key {raw_key!r}: {exc.format_message()}", ctx) from None
    return values
