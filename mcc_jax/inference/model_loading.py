"""Loading a model for inference from a training workdir or a model checkpoint."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from mcc_jax.models import factory
from mcc_jax.models.generator import Generator
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.models.reenactment import init_variables


class CheckpointMismatchError(ValueError):
  """The weights do not fit the networks the configuration describes."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """Everything inference needs.

  Attributes:
    config: the whole configuration (``config.model`` built the networks).
    variables: ``{'motion_estimator': {'params', 'batch_stats'}, 'generator':
      {'params'}}`` as numpy arrays.
    estimator: the motion estimator (keypoints, dense motion).
    generator: the compensating generator.
    description: where the weights came from, for logs (path, step, EMA or raw).
  """

  config: ml_collections.ConfigDict
  variables: dict[str, Any]
  estimator: MotionEstimator
  generator: Generator
  description: str

  @property
  def image_size(self) -> int:
    """Side of the square frames the model reads and writes."""
    return int(self.config.model.image_size)


def _shapes(tree) -> dict[str, tuple]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in flat}


def _expected_variables(model_config, train: bool) -> dict[str, Any]:
  """Shapes of the networks' variables (nothing computed). Training mode has more
  generator parameters (the motion-reconstruction decoders) than inference needs."""
  estimator = factory.build_motion_estimator(model_config)
  generator = factory.build_generator(model_config)
  key = jax.random.PRNGKey(0)
  return jax.eval_shape(lambda: init_variables(estimator, generator, model_config.image_size,
                                               key, key, train=train))


def check_variables(variables: dict[str, Any], model_config, origin: str) -> None:
  """Raises :class:`CheckpointMismatchError` unless ``variables`` fit the networks.

  Every variable inference uses must be present with its shape; training-only ones
  (in a training run's checkpoint) may be present or not; nothing else may be.

  Args:
    variables: ``{'motion_estimator': ..., 'generator': ...}``.
    model_config: ``config.model``.
    origin: the checkpoint's path, for the message.
  """
  required = _shapes(_expected_variables(model_config, train=False))
  allowed = _shapes(_expected_variables(model_config, train=True))
  allowed.update(required)
  found = _shapes({name: variables[name] for name in ("motion_estimator", "generator")})
  missing = sorted(set(required) - set(found))
  unexpected = sorted(set(found) - set(allowed))
  reshaped = sorted(name for name in set(allowed) & set(found)
                    if allowed[name] != found[name])
  if not (missing or unexpected or reshaped):
    return
  lines = []
  for title, names, show in (("missing", missing, lambda n: f"{n} {required[n]}"),
                             ("unexpected", unexpected, lambda n: f"{n} {found[n]}"),
                             ("shape differs", reshaped,
                              lambda n: f"{n}: checkpoint {found[n]}, config {allowed[n]}")):
    if names:
      lines.append(f"  {title} ({len(names)}): " + "; ".join(show(n) for n in names[:4])
                   + (" ..." if len(names) > 4 else ""))
  raise CheckpointMismatchError(
      f"{origin}: the checkpoint does not match the configuration (image_size "
      f"{model_config.image_size}, variant {model_config.variant!r}); the weights differ from "
      "the networks it describes:\n" + "\n".join(lines))


def load_model(*, workdir: str | os.PathLike | None = None,
               checkpoint: str | os.PathLike | None = None, step: int | None = None,
               use_ema: bool = True,
               config: ml_collections.ConfigDict | None = None) -> LoadedModel:
  """Loads the networks and weights of a training run or of a model checkpoint.

  Args:
    workdir: the directory of an ``mcc-jax train`` run (its newest checkpoint, or
      ``step``).
    checkpoint: a directory written by ``mcc-jax convert-official`` (or
      :func:`mcc_jax.checkpoints.model_files.save_model_checkpoint`). Exactly one of
      ``workdir`` and ``checkpoint``.
    step: with ``workdir``, which checkpoint (None: the newest).
    use_ema: with ``workdir``, the generator's moving-average weights (what the paper
      evaluates) instead of the raw ones. Model checkpoints hold one set.
    config: build the networks from this configuration instead of the one saved with
      the weights (which must then fit it).

  Returns:
    A :class:`LoadedModel`.

  Raises:
    FileNotFoundError: the workdir or checkpoint is missing or holds no checkpoint.
    CheckpointMismatchError: the weights do not fit the configuration.
    ValueError: both or neither of ``workdir`` and ``checkpoint``.
  """
  if (workdir is None) == (checkpoint is None):
    raise ValueError("load_model: give exactly one of workdir and checkpoint")
  if workdir is not None:
    from mcc_jax import checkpoints  # pylint: disable=import-outside-toplevel

    if not pathlib.Path(workdir).is_dir():
      raise FileNotFoundError(f"{workdir}: no such workdir (expected the directory of an "
                              f"`mcc-jax train` run)")
    saved_step = step if step is not None else checkpoints.latest_step(workdir)
    saved_config = checkpoints.restore_config(workdir, saved_step)
    restored = checkpoints.restore_params(workdir, saved_step)
    generator_vars = restored["generator_ema" if use_ema else "generator"]
    variables = {"motion_estimator": restored["motion_estimator"], "generator": generator_vars}
    origin = f"{workdir} (step {saved_step}, {'EMA' if use_ema else 'raw'} generator weights)"
  else:
    from mcc_jax.checkpoints.model_files import load_model_checkpoint  # pylint: disable=import-outside-toplevel

    if not pathlib.Path(checkpoint).is_dir():
      raise FileNotFoundError(f"{checkpoint}: no such checkpoint directory (expected one "
                              f"written by `mcc-jax convert-official`)")
    variables, saved_config = load_model_checkpoint(checkpoint)
    origin = str(checkpoint)
  config = saved_config if config is None else config
  factory.validate_model_config(config.model)
  check_variables(variables, config.model, origin)
  return LoadedModel(config=config, variables=jax.tree.map(np.asarray, variables),
                     estimator=factory.build_motion_estimator(config.model),
                     generator=factory.build_generator(config.model), description=origin)
