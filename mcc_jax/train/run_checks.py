"""What a user can get wrong about a run, checked before any compute: config and workdir."""

from __future__ import annotations

import os
import pathlib

import ml_collections

from mcc_jax.models import factory


def check_workdir(workdir: str | os.PathLike) -> pathlib.Path:
  """Creates ``workdir`` if needed and checks that it can be written.

  Returns:
    The workdir as an absolute path.

  Raises:
    PermissionError: naming the workdir when a file cannot be created in it.
  """
  path = pathlib.Path(workdir).expanduser().resolve()
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write-test-{os.getpid()}"
    probe.write_text("")
    probe.unlink()
  except OSError as error:
    raise PermissionError(f"--workdir {path} cannot be written: {error.strerror or error}") \
        from error
  return path


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks the training fields; raises ValueError naming the first bad one."""
  factory.validate_model_config(config.model)
  from mcc_jax import data_pipelines  # pylint: disable=import-outside-toplevel
  data_pipelines.validate_datasets_config(config.datasets)

  def positive(name, value, allow_zero=False):
    ok = isinstance(value, int) and not isinstance(value, bool) and (
        value >= 0 if allow_zero else value > 0)
    if not ok:
      raise ValueError(f"config.{name} must be a {'non-negative' if allow_zero else 'positive'}"
                       f" integer, got {value!r}")

  positive("batch_size", config.batch_size)
  positive("total_steps", config.total_steps)
  positive("checkpoint.every_steps", config.checkpoint.every_steps)
  positive("log_every_steps", config.log_every_steps)
  positive("image_every_steps", config.image_every_steps, allow_zero=True)
  positive("eval_every_steps", config.eval_every_steps, allow_zero=True)
  positive("model.batch_norm_group_size", config.model.batch_norm_group_size, allow_zero=True)
  if config.datasets.image_size != config.model.image_size:
    raise ValueError(f"config.datasets.image_size ({config.datasets.image_size}) must equal "
                     f"config.model.image_size ({config.model.image_size})")
