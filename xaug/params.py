"""Reading params.yaml with errors that name the parameter."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError


class Params(dict):
    """params.yaml as a dict, with ``get_path('xdr.epochs')`` that fails naming the parameter."""

    def get_path(self, dotted: str, default=...):
        node = self
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise ConfigError(f"{dotted}: missing from params.yaml")
            node = node[part]
        return node

    def seed(self) -> int:
        """The ``seed`` parameter: an integer >= 0 (checked by every stage that reads it, prepare first)."""
        value = self.get_path("seed")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"seed: expected an integer >= 0, got {value!r}")
        return value

    def device(self):
        """The torch device of the ``device`` parameter (auto: the GPU when there is one)."""
        from .device import resolve_device

        return resolve_device(self.get("device", "auto"))


def load_params(path="params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter groups")
    return Params(data)


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return value
