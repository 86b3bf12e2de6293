"""Click parameter types of the CLI: integer lists, KEY=VALUE pairs and head names.

Each type accepts both what a user types on the command line (a string) and what a JSON/TOML config file
holds (a list, a number), so the same conversion serves flags and config keys.
"""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["HEAD_NAME", "INT_LIST", "KEY_VALUE", "HeadName", "IntList", "KeyValue", "parse_json_or_str"]


def parse_json_or_str(text: str) -> Any:
    """``text`` parsed as JSON when it is valid JSON (``0.5``, ``true``, ``[1,2]``, ``null``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class IntList(click.ParamType):
    """Comma-separated non-negative integers (``512,256``), or a JSON list of them; ``""`` is the empty list."""

    name = "ints"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            return value
        if isinstance(value, str):
            items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [value]
        else:
            self.fail(f"expected comma-separated integers such as 512,256; got {value!r}", param, ctx)
        out = []
        for item in items:
            try:
                number = int(item)
            except (TypeError, ValueError):
                self.fail(f"expected comma-separated integers such as 512,256; got {value!r}", param, ctx)
            if isinstance(item, bool) or number <= 0 or (isinstance(item, float) and item != number):
                self.fail(f"sizes must be positive integers; got {value!r}", param, ctx)
            out.append(number)
        return tuple(out)


class KeyValue(click.ParamType):
    """``KEY=VALUE``; VALUE is parsed as JSON when possible (``threshold=0.5`` gives a float)."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        if isinstance(value, tuple) and len(value) == 2:
            return value
        if not isinstance(value, str) or "=" not in value or not value.split("=", 1)[0].strip():
            self.fail(f"expected KEY=VALUE; got {value!r}", param, ctx)
        key, text = value.split("=", 1)
        return key.strip().replace("-", "_"), parse_json_or_str(text)


class HeadName(click.ParamType):
    """A registered head name; the choices come from ``sparsexc.heads.list_heads()`` when first needed, so
    heads added later appear without touching the CLI (and ``sparsexc --help`` does not import torch)."""

    name = "head"

    @staticmethod
    def choices() -> list[str]:
        from sparsexc.heads import list_heads

        return sorted(list_heads())

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        try:
            return "[" + "|".join(self.choices()) + "]"
        except ImportError:  # --help must work even if the heads cannot be imported
            return "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        choices = self.choices()
        if value not in choices:
            self.fail(f"unknown head {value!r}; choose from {', '.join(choices)}", param, ctx)
        return value


INT_LIST = IntList()
KEY_VALUE = KeyValue()
HEAD_NAME = HeadName()
