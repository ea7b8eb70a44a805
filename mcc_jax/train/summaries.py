"""What the trainer shows besides numbers: reconstructions, flows and occlusion maps.

Every ``image_every_steps`` the trainer writes, for the first few pairs of the run's
first batch (fixed, so that the pictures of successive steps are comparable), one
image row per pair: source | driving | generated | flow (colour wheel) | occlusion,
computed with the generator's moving-average weights as inference would.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import ops
from mcc_jax.models.reenactment import reenact
from mcc_jax.train import batch_input
from mcc_jax.visualization import flow as flow_pictures

PREVIEW_EXAMPLES = 4


def reconstruct_fn(models) -> Callable[..., jax.Array]:
  """``reconstruct(variables, source, driving) -> generated`` in inference mode.

  ``variables`` is ``{'generator': {'params'}, 'motion_estimator': {'params',
  'batch_stats'}}``; the motion estimator uses its running BatchNorm statistics.
  """

  def reconstruct(variables: dict[str, Any], source: jax.Array, driving: jax.Array) -> jax.Array:
    return reenact(models.motion_estimator, models.generator, variables, source,
                   driving).output.image

  return reconstruct


class Preview:
  """Image summaries of a fixed batch.

  Attributes:
    batch: the global batch the pictures are made of (set by the trainer from its first
      batch), or None.
  """

  def __init__(self, models, replicated_sharding, value_range=(-1.0, 1.0)):
    self.batch = None

    def pictures(state, batch):
      batch = batch_input.model_batch(
          {key: batch[key][:PREVIEW_EXAMPLES] for key in batch_input.FRAME_KEYS},
          value_range)
      source, driving = batch["source"], batch["driving"]
      variables = {"motion_estimator": state.variables("motion_estimator"),
                   "generator": state.variables("generator", ema=True)}
      out = reenact(models.motion_estimator, models.generator, variables, source,
                    driving).output
      return source, driving, out.image, out.flows[-1], out.occlusions[-1]

    self._pictures = jax.jit(pictures, out_shardings=replicated_sharding)

  def images(self, state) -> dict[str, np.ndarray]:
    """``{'preview': (N, S, 5 S, 3) float in [0, 1]}``: one row of five panels per pair."""
    # Replicated outputs: this process's shard holds the whole value.
    source, driving, generated, flow, occlusion = (
        np.asarray(x.addressable_data(0)) for x in self._pictures(state, self.batch))
    size = source.shape[1:3]
    to_unit = lambda x: np.clip((np.asarray(x, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    f = flow.shape[1]
    displacement = flow - np.asarray(ops.coordinate_grid(f, f))[None]
    colours = flow_pictures.flow_to_color(displacement)
    colours = np.asarray(jax.image.resize(jnp.asarray(colours, jnp.float32),
                                          (colours.shape[0], *size, 3), "nearest"))
    occlusion = np.asarray(jax.image.resize(jnp.asarray(occlusion, jnp.float32),
                                            (occlusion.shape[0], *size, 1), "bilinear"))
    panels = [to_unit(source), to_unit(driving), to_unit(generated),
              _unit_colours(colours), np.repeat(np.clip(occlusion, 0, 1), 3, axis=-1)]
    return {"preview": np.concatenate(panels, axis=2)}


def _unit_colours(colours: np.ndarray) -> np.ndarray:
  colours = np.asarray(colours, np.float32)
  return colours / 255.0 if colours.max() > 1.0 else colours
