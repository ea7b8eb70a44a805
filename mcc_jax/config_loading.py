"""Loading ``get_config()`` files with command-line overrides.

Commands take ``--config PATH`` and any number of ``--config.<field>=<value>``
overrides, as the Flax examples do with ml_collections' config flags:

    mcc-jax convert-official --config configs/vox256.py --config.model.variant=full ...

Values are parsed as Python literals where possible (numbers, booleans, tuples) and
otherwise kept as strings; the override must name an existing field, and the new value
must have a compatible type, or a :class:`ConfigOverrideError` names the field.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys
from typing import Sequence

import ml_collections


class ConfigOverrideError(ValueError):
  """A config file or override is invalid; the message names it."""


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """Executes a config file and returns its ``get_config()``.

  Args:
    path: a ``.py`` file defining ``get_config()``.

  Raises:
    ConfigOverrideError: if the file is missing or has no ``get_config``.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ConfigOverrideError(f"config file {path} does not exist")
  # Config files may import their siblings as `configs.<name>`.
  root = str(path.resolve().parent.parent)
  if root not in sys.path:
    sys.path.insert(0, root)
  spec = importlib.util.spec_from_file_location(f"_mcc_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigOverrideError(f"config file {path} defines no get_config()")
  return module.get_config()


def _parse_value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_override(config: ml_collections.ConfigDict, field: str, text: str) -> None:
  """Sets ``config.<field>`` from its command-line text.

  Raises:
    ConfigOverrideError: unknown field or incompatible value.
  """
  *parents, leaf = field.split(".")
  node = config
  for i, name in enumerate(parents):
    if name not in node:
      raise ConfigOverrideError(f"--config.{field}: config has no field "
                                f"{'.'.join(parents[:i + 1])!r}")
    node = node[name]
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise ConfigOverrideError(f"--config.{field}: config has no field {field!r}")
  value = _parse_value(text)
  current = node[leaf]
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  try:
    node[leaf] = value
  except (TypeError, ValueError) as error:
    raise ConfigOverrideError(
        f"--config.{field}: cannot set {text!r} where a {type(current).__name__} is "
        f"expected") from error


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """Separates ``--config.<field>[=]<value>`` arguments from the others.

  Returns:
    (remaining arguments, [(field, value text), ...]).
  """
  rest, overrides = [], []
  args = list(argv)
  i = 0
  while i < len(args):
    arg = args[i]
    if arg.startswith("--config."):
      name = arg[len("--config."):]
      if "=" in name:
        field, text = name.split("=", 1)
      else:
        if i + 1 >= len(args):
          raise ConfigOverrideError(f"{arg} needs a value")
        field, text = name, args[i + 1]
        i += 1
      overrides.append((field, text))
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def load_config(path: str | pathlib.Path,
                overrides: Sequence[tuple[str, str]] = ()) -> ml_collections.ConfigDict:
  """Loads a config file and applies ``(field, value text)`` overrides in order."""
  config = load_config_file(path)
  for field, text in overrides:
    apply_override(config, field, text)
  return config
