"""The InceptionV3 of FID (pytorch-fid's ``InceptionV3(use_fid_inception=True)``) in Flax.

FID's network is the TensorFlow 2015-12-05 Inception graph, ported to PyTorch by
pytorch-fid (``pt_inception-2015-12-05-6726825d.pth``). It is torchvision's
``Inception3`` with four differences, all reproduced here:

* the average pools inside ``Mixed_5b``-``Mixed_5d``, ``Mixed_6b``-``Mixed_6e`` and
  ``Mixed_7b`` ignore the zero padding (``count_include_pad=False``);
* ``Mixed_7c`` max-pools (3x3, stride 1, padding 1) where torchvision average-pools;
* 1008 classes (the classifier is not used here);
* no auxiliary classifier.

The features are the 2048-d output of the final average pool ("pool3"). Inputs are RGB
in [0, 1]; as pytorch-fid's defaults (``resize_input=True``, ``normalize_input=True``)
they are resized bilinearly to 299x299 (``align_corners=False``, no anti-aliasing) and
mapped to [-1, 1].

Layout: NHWC. Module names follow torchvision's attribute names (``Mixed_6b``,
``branch7x7dbl_3``, ``conv``, ``bn``), so :func:`convert_state_dict` maps a state dict
by name alone.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.convert.state_dict import ConversionError, StateDictMapper, check_tree_matches
from mcc_jax.ops.resize import resize_bilinear

INPUT_SIZE = 299
FEATURE_DIM = 2048
# BatchNorm epsilon of torchvision's BasicConv2d.
BN_EPSILON = 1e-3

_Pair = tuple[int, int]


def _pair(value: int | _Pair) -> _Pair:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv(nn.Module):
  """Convolution without bias, BatchNorm (running statistics) and ReLU.

  Attributes:
    features: output channels.
    kernel: kernel (height, width) or side.
    stride: stride in both directions.
    padding: zero padding (height, width) or both.
  """

  features: int
  kernel: int | _Pair
  stride: int = 1
  padding: int | _Pair = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C_in) -> (B, H', W', features)."""
    pad_h, pad_w = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), strides=(self.stride, self.stride),
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False,
                precision=jax.lax.Precision.HIGHEST, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
    return nn.relu(x)


def _avg_pool_excluding_padding(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_same(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_reduce(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  """``Mixed_5b``-``Mixed_5d`` (FID variant: the pool ignores padding).

  Attributes:
    pool_features: channels of the pooling branch.
  """

  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, 224 + pool_features)."""
    branch1x1 = BasicConv(64, 1, name="branch1x1")(x)
    branch5x5 = BasicConv(48, 1, name="branch5x5_1")(x)
    branch5x5 = BasicConv(64, 5, padding=2, name="branch5x5_2")(branch5x5)
    branch3x3dbl = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = BasicConv(self.pool_features, 1, name="branch_pool")(
        _avg_pool_excluding_padding(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """``Mixed_6a``: grid reduction 35 -> 17."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H', W', 480 + C)."""
    branch3x3 = BasicConv(384, 3, stride=2, name="branch3x3")(x)
    branch3x3dbl = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv(96, 3, stride=2, name="branch3x3dbl_3")(branch3x3dbl)
    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_reduce(x)], axis=-1)


class InceptionC(nn.Module):
  """``Mixed_6b``-``Mixed_6e``: factorised 7x7 convolutions (FID variant pool).

  Attributes:
    channels_7x7: width of the 7x7 branches.
  """

  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, 768)."""
    c7 = self.channels_7x7
    branch1x1 = BasicConv(192, 1, name="branch1x1")(x)
    branch7x7 = BasicConv(c7, 1, name="branch7x7_1")(x)
    branch7x7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
    branch7x7dbl = BasicConv(c7, 1, name="branch7x7dbl_1")(x)
    for index, (features, kernel, padding) in enumerate(
        [(c7, (7, 1), (3, 0)), (c7, (1, 7), (0, 3)), (c7, (7, 1), (3, 0)),
         (192, (1, 7), (0, 3))], start=2):
      branch7x7dbl = BasicConv(features, kernel, padding=padding,
                               name=f"branch7x7dbl_{index}")(branch7x7dbl)
    branch_pool = BasicConv(192, 1, name="branch_pool")(_avg_pool_excluding_padding(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """``Mixed_7a``: grid reduction 17 -> 8."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H', W', 512 + C)."""
    branch3x3 = BasicConv(192, 1, name="branch3x3_1")(x)
    branch3x3 = BasicConv(320, 3, stride=2, name="branch3x3_2")(branch3x3)
    branch7x7x3 = BasicConv(192, 1, name="branch7x7x3_1")(x)
    branch7x7x3 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = BasicConv(192, 3, stride=2, name="branch7x7x3_4")(branch7x7x3)
    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_reduce(x)], axis=-1)


class InceptionE(nn.Module):
  """``Mixed_7b`` / ``Mixed_7c``: expanded filter banks.

  Attributes:
    pool: ``'average'`` (``Mixed_7b``, padding excluded) or ``'max'`` (``Mixed_7c``,
      the FID network's quirk).
  """

  pool: str

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, 2048)."""
    branch1x1 = BasicConv(320, 1, name="branch1x1")(x)
    branch3x3 = BasicConv(384, 1, name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3)], axis=-1)
    branch3x3dbl = BasicConv(448, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(branch3x3dbl),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(branch3x3dbl)],
                                   axis=-1)
    if self.pool == "max":
      pooled = _max_pool_same(x)
    elif self.pool == "average":
      pooled = _avg_pool_excluding_padding(x)
    else:
      raise ValueError(f"InceptionE.pool must be 'average' or 'max', got {self.pool!r}")
    branch_pool = BasicConv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's ``InceptionV3`` up to the pool3 features.

  Attributes:
    resize_input: resize the input to 299x299 first (pytorch-fid's default); the
      network itself accepts any size from 75x75.
  """

  resize_input: bool = True

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    """Pool3 features.

    Args:
      images: (B, H, W, 3) RGB in [0, 1].

    Returns:
      (B, 2048) float32.
    """
    x = images.astype(jnp.float32)
    if self.resize_input:
      x = resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE), align_corners=False)
    x = 2.0 * x - 1.0
    x = BasicConv(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_reduce(x)
    x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_reduce(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, channels in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                           ("Mixed_6e", 192)):
      x = InceptionC(channels, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("average", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


# Tensors of the FID state dict that the pool3 features do not use.
_UNUSED_PREFIXES = ("fc.", "AuxLogits.")


def _nest(tree: dict, path: Sequence[str], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def expected_variables(image_size: int = INPUT_SIZE) -> dict:
  """Shapes of :class:`FIDInceptionV3`'s variables (nothing computed).

  Args:
    image_size: input side used to trace the network.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` of ``jax.ShapeDtypeStruct``.
  """
  images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
  return jax.eval_shape(lambda x: FIDInceptionV3().init(jax.random.PRNGKey(0), x), images)


def convert_state_dict(state: Mapping[str, Any]) -> dict:
  """pytorch-fid's FID Inception state dict -> :class:`FIDInceptionV3` variables.

  Accepts the ``pt_inception-2015-12-05-6726825d.pth`` layout (torchvision
  ``Inception3`` names: ``Mixed_6b.branch7x7_2.conv.weight``, ...). Every tensor must map
  except the classifier (``fc.*``, ``AuxLogits.*``), and the result must have exactly the
  network's variables.

  Args:
    state: tensor name -> array.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` of numpy float32 arrays.

  Raises:
    ConversionError: naming the tensors that are missing, left over or misshaped.
  """
  ignore = tuple(name for name in state if name.startswith(_UNUSED_PREFIXES))
  mapper = StateDictMapper(state, ignore=ignore)
  params: dict = {}
  batch_stats: dict = {}
  for name in sorted(state):
    if not name.endswith(".conv.weight"):
      continue
    prefix = name[:-len(".conv.weight")]
    path = prefix.split(".")
    _nest(params, path + ["conv"], mapper.conv(f"{prefix}.conv", bias=False))
    bn_params, bn_stats = mapper.batch_norm(f"{prefix}.bn")
    _nest(params, path + ["bn"], bn_params)
    _nest(batch_stats, path + ["bn"], bn_stats)
  mapper.finish()
  variables = jax.tree.map(lambda x: np.asarray(x, np.float32),
                           {"params": params, "batch_stats": batch_stats})
  if not params:
    raise ConversionError("the state dict holds no '<layer>.conv.weight' tensor; expected "
                          "pytorch-fid's pt_inception-2015-12-05 weights")
  check_tree_matches(variables, expected_variables(), what="FID InceptionV3")
  return variables
