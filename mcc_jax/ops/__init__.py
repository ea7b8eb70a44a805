"""Pure JAX ops of mcc-jax, reusable in other projects (no Flax state, no TensorFlow).

* :mod:`~mcc_jax.ops.warp`: ``grid_sample`` with PyTorch semantics, ``coordinate_grid``,
  ``linspace_grid`` (torch.linspace's float32 grid), ``resize_flow`` and ``warp``.
* :mod:`~mcc_jax.ops.conv`: ``conv2d`` (NHWC, PyTorch semantics), a matrix product on
  maps smaller than the kernel, where XLA's CPU convolution is slow, and on CPU a kernel
  gradient by im2col matrix products on maps of 128x128 and more.
* :mod:`~mcc_jax.ops.resize`: bilinear (``align_corners``) and nearest resizing.
* :mod:`~mcc_jax.ops.quantize`: vector quantisation with straight-through gradients,
  the code-level loss and multi-scale code allocation (also as a linen module).
* :mod:`~mcc_jax.ops.keypoints`: gaussian heatmaps, FOMM sparse motions and relative
  motion transfer.
* :mod:`~mcc_jax.ops.tps`: random affine + thin-plate-spline transforms.
* :mod:`~mcc_jax.ops.windows`: window partition and reverse.
* :mod:`~mcc_jax.ops.precision`: ``at_least_float32``, the precision floor of losses and flows.
"""

from mcc_jax.ops.antialias import antialias_downsample
from mcc_jax.ops.conv import conv2d
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.keypoints import convex_hull_area
from mcc_jax.ops.keypoints import heatmap_difference
from mcc_jax.ops.keypoints import kp_to_gaussian
from mcc_jax.ops.keypoints import sparse_motions
from mcc_jax.ops.keypoints import transfer_relative_motion
from mcc_jax.ops.precision import at_least_float32
from mcc_jax.ops.quantize import QuantizerOutput
from mcc_jax.ops.quantize import VectorQuantizer
from mcc_jax.ops.quantize import allocated_codes
from mcc_jax.ops.quantize import code_range
from mcc_jax.ops.quantize import lookup
from mcc_jax.ops.quantize import quantize
from mcc_jax.ops.resize import resize_bilinear
from mcc_jax.ops.resize import upsample_nearest
from mcc_jax.ops.tps import RandomTPS
from mcc_jax.ops.tps import sample_random_tps
from mcc_jax.ops.tps import transform_frame
from mcc_jax.ops.tps import warp_coordinates
from mcc_jax.ops.tps import jacobian as tps_jacobian
from mcc_jax.ops.warp import coordinate_grid
from mcc_jax.ops.warp import grid_sample
from mcc_jax.ops.warp import linspace_grid
from mcc_jax.ops.warp import resize_flow
from mcc_jax.ops.warp import warp
from mcc_jax.ops.windows import window_partition
from mcc_jax.ops.windows import window_reverse

__all__ = [
    "Keypoints",
    "QuantizerOutput",
    "RandomTPS",
    "VectorQuantizer",
    "allocated_codes",
    "antialias_downsample",
    "at_least_float32",
    "code_range",
    "conv2d",
    "convex_hull_area",
    "coordinate_grid",
    "grid_sample",
    "heatmap_difference",
    "kp_to_gaussian",
    "linspace_grid",
    "lookup",
    "quantize",
    "resize_bilinear",
    "resize_flow",
    "sample_random_tps",
    "sparse_motions",
    "tps_jacobian",
    "transfer_relative_motion",
    "transform_frame",
    "upsample_nearest",
    "warp",
    "warp_coordinates",
    "window_partition",
    "window_reverse",
]
