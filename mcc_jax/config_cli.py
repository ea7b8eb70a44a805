"""``--config PATH`` and ``--config.<field>=<value>`` on the command line, by ml_collections.

Every command that reads a configuration takes it as the Flax examples do: a
``get_config()`` file and any number of field overrides, parsed by ml_collections'
``config_flags`` (with ``lock_config``: an override must name an existing field, and the
value must parse as that field's type). The remaining arguments are left to the
command's own parser.

    mcc-jax train --config=configs/sample.py --workdir=runs/sample --config.total_steps=200
"""

from __future__ import annotations

import re
from typing import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

_CONFIG_ARG = re.compile(r"^--config(\.[^=]+)?(=.*)?$")


class ConfigArgumentError(ValueError):
  """A ``--config`` file or override is invalid; the message names it."""


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
  argv = [prog] + list(config_args)
  has_file = any(a == "--config" or a.startswith("--config=") for a in config_args)
  if not has_file:
    if default is None:
      raise ConfigArgumentError("--config is required (a get_config() file such as "
                                "configs/sample.py)")
    argv.insert(1, f"--config={default}")
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


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """``parse_config`` for code: ``load_config('configs/tiny.py', ['--config.x=1'])``."""
  return parse_config([f"--config={path}", *overrides])
