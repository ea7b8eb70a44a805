"""``--config PATH`` and ``--config.<field>=<value>`` on the command line, by ml_collections.

Every command that reads a configuration takes it as the Flax examples do: a
``get_config()`` file and any number of field overrides, parsed by ml_collections'
``config_flags`` (with ``lock_config``: an override must name an existing field, and the
value must parse as that field's type). The remaining arguments are left to the
command's own parser.

    mcc-jax train --config=configs/sample.py --workdir=runs/sample --config.total_steps=200

``--config`` takes a file path or the name of a shipped configuration (``sample``,
``tiny``, ``vox256``: the files of ``mcc_jax.configs``, found from any directory,
installed or in a checkout).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
from typing import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

_CONFIG_ARG = re.compile(r"^--config(\.[^=]+)?(=.*)?$")


class ConfigArgumentError(ValueError):
  """A ``--config`` file or override is invalid; the message names it."""


def shipped_configs() -> dict[str, pathlib.Path]:
  """The configurations shipped with the package: name -> its ``get_config()`` file."""
  spec = importlib.util.find_spec("mcc_jax.configs")
  folders = list(spec.submodule_search_locations or ()) if spec else []
  return {path.stem: path for folder in folders
          for path in sorted(pathlib.Path(folder).glob("*.py"))
          if not path.stem.startswith("_")}


def shipped_config_path(name: str) -> pathlib.Path:
  """The file of the shipped configuration ``name`` (``sample``, ``tiny``, ``vox256``)."""
  configs = shipped_configs()
  if name not in configs:
    raise ConfigArgumentError(f"no shipped configuration {name!r}; the shipped ones are "
                              f"{sorted(configs)}")
  return configs[name]


def resolve_config_file(value: str) -> str:
  """``--config``'s value with a shipped configuration's name replaced by its file.

  A value that names an existing file, or looks like a path (a ``/`` or ``.py``), is
  kept as it is; ``ml_collections``' ``path:argument`` form keeps its argument.
  """
  path, separator, argument = value.partition(":")
  if os.path.exists(path) or "/" in path or os.sep in path or path.endswith(".py"):
    return value
  return f"{shipped_config_path(path)}{separator}{argument}"


def split_config_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Separates ``--config`` / ``--config.x`` arguments (with their values) from the rest.

  Returns:
    (config arguments in order, the other arguments in order).
  """
  config_args, rest = [], []
  args = list(argv)
  i = 0
  while i < len(args):
    arg = args[i]
    if _CONFIG_ARG.match(arg):
      config_args.append(arg)
      if "=" not in arg:
        if i + 1 >= len(args):
          raise ConfigArgumentError(f"{arg} needs a value")
        config_args.append(args[i + 1])
        i += 1
    else:
      rest.append(arg)
    i += 1
  return config_args, rest


def parse_config(config_args: Sequence[str], *, default: str | None = None,
                 prog: str = "mcc-jax") -> ml_collections.ConfigDict:
  """The configuration named by ``--config`` with every ``--config.x`` override applied.

  Args:
    config_args: arguments as returned by :func:`split_config_args`.
    default: config file used when ``--config`` is absent (None: ``--config`` is required).
    prog: program name for messages.

  Raises:
    ConfigArgumentError: a missing or broken file, an unknown field, a value of the
      wrong type; the message names the argument.
  """
  config_args = list(config_args)
  has_file = any(a == "--config" or a.startswith("--config=") for a in config_args)
  if not has_file:
    if default is None:
      raise ConfigArgumentError("--config is required (a get_config() file such as "
                                "configs/sample.py, or a shipped configuration's name: "
                                f"{', '.join(sorted(shipped_configs()))})")
    config_args.insert(0, f"--config={default}")
  argv = [prog] + _with_resolved_file(config_args)
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "Configuration file.", flag_values=values,
                                  lock_config=True, sys_argv=argv)
  try:
    values(argv)
    config = values.config
    # A file that failed to load surfaces on first use, so use it here.
    list(config.keys())
  except (flags.Error, AttributeError, KeyError, OSError, TypeError, ValueError) as error:
    message = str(error).strip().strip("'").replace("\\n", " ").replace("\n", " ")
    raise ConfigArgumentError(f"invalid --config argument: {message}") from error
  if config is None:
    raise ConfigArgumentError("--config named no configuration")
  return config


def _with_resolved_file(config_args: Sequence[str]) -> list[str]:
  """``config_args`` with the ``--config`` value passed through :func:`resolve_config_file`."""
  resolved = list(config_args)
  for i, arg in enumerate(resolved):
    if arg.startswith("--config="):
      resolved[i] = "--config=" + resolve_config_file(arg[len("--config="):])
    elif arg == "--config" and i + 1 < len(resolved):
      resolved[i + 1] = resolve_config_file(resolved[i + 1])
  return resolved


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """``parse_config`` for code: ``load_config('configs/tiny.py', ['--config.x=1'])``."""
  return parse_config([f"--config={path}", *overrides])
