"""Random affine + thin-plate-spline transforms for the equivariance loss (FOMM Sec. 3.3).

A transform maps normalised coordinates ``p`` (on the [-1, 1] grid) to

    T(p) = A p + t + sum_c w_c * r_c^2 * log(r_c + 1e-6),   r_c = |p - c|_1

with ``[A | t] = I + N(0, sigma_affine)`` per batch element, control points ``c`` on a
``points_tps x points_tps`` grid and weights ``w_c ~ N(0, sigma_tps)``. Like the
official code, the radial term uses the L1 distance to each control point.

``transform_frame`` resamples an image with the transform (reflection padding), and
``jacobian`` returns ``dT/dp`` by automatic differentiation, which the jacobian part of
the equivariance loss compares with the keypoint detector's jacobians.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from mcc_jax.ops.warp import coordinate_grid, grid_sample


@flax.struct.dataclass
class RandomTPS:
  """Parameters of a batch of random transforms.

  Attributes:
    theta: (B, 2, 3) affine part ``[A | t]``.
    control_points: (P, 2) control points (shared by the batch).
    control_params: (B, P) radial weights.
  """

  theta: jax.Array
  control_points: jax.Array
  control_params: jax.Array


def sample_random_tps(key: jax.Array, batch_size: int, *, sigma_affine: float,
                      sigma_tps: float, points_tps: int) -> RandomTPS:
  """Draws a batch of random transforms.

  Args:
    key: PRNG key.
    batch_size: B.
    sigma_affine: std of the noise added to the identity affine matrix (0.05 in the paper).
    sigma_tps: std of the radial weights (0.005).
    points_tps: control points per side (5).

  Returns:
    A :class:`RandomTPS`.
  """
  if points_tps < 2:
    raise ValueError(f"points_tps must be >= 2, got {points_tps}.")
  key_affine, key_tps = jax.random.split(key)
  noise = sigma_affine * jax.random.normal(key_affine, (batch_size, 2, 3))
  theta = noise + jnp.eye(2, 3)[None]
  control_points = coordinate_grid(points_tps, points_tps, dtype=noise.dtype).reshape(-1, 2)
  control_params = sigma_tps * jax.random.normal(key_tps, (batch_size, points_tps**2))
  return RandomTPS(theta=theta, control_points=control_points, control_params=control_params)


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
  """``|x|`` whose derivative at 0 is 0, as PyTorch's (JAX's own is 1 there).

  The convention matters: keypoints of a detector whose heatmap has collapsed onto one
  pixel sit exactly on grid coordinates such as -1, 0 or 1, which are also the control
  points' coordinates, and the equivariance loss differentiates the transform there.
  """
  return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  return jnp.abs(x), jnp.sign(x) * t


def warp_coordinates(tps: RandomTPS, coordinates: jax.Array) -> jax.Array:
  """Applies the transforms to points.

  Args:
    tps: B transforms.
    coordinates: (B, N, 2) or (N, 2) points (the latter shared by the batch).

  Returns:
    (B, N, 2) transformed points.
  """
  batch = tps.theta.shape[0]
  if coordinates.ndim == 2:
    coordinates = jnp.broadcast_to(coordinates[None], (batch,) + coordinates.shape)
  coordinates = coordinates.astype(tps.theta.dtype)
  precision = jax.lax.Precision.HIGHEST
  affine = (jnp.einsum("bij,bnj->bni", tps.theta[:, :, :2], coordinates, precision=precision)
            + tps.theta[:, None, :, 2])
  distances = jnp.sum(
      _abs(coordinates[:, :, None, :] - tps.control_points[None, None, :, :]), axis=-1)
  radial = distances**2 * jnp.log(distances + 1e-6)
  bend = jnp.einsum("bnp,bp->bn", radial, tps.control_params, precision=precision)
  return affine + bend[..., None]


def jacobian(tps: RandomTPS, coordinates: jax.Array) -> jax.Array:
  """``dT/dp`` at each point, by automatic differentiation.

  Args:
    tps: B transforms.
    coordinates: (B, N, 2) points.

  Returns:
    (B, N, 2, 2) jacobians; ``[..., i, j] = d T_i / d p_j``.
  """

  def one_point(theta, params, point):
    single = RandomTPS(theta[None], tps.control_points, params[None])
    return warp_coordinates(single, point[None, None])[0, 0]

  per_point = jax.vmap(jax.jacfwd(one_point, argnums=2), in_axes=(None, None, 0))
  return jax.vmap(per_point)(tps.theta, tps.control_params, coordinates)


def transform_frame(tps: RandomTPS, frame: jax.Array) -> jax.Array:
  """Resamples frames with the transforms: ``out(p) = frame(T(p))``.

  Args:
    tps: B transforms.
    frame: (B, H, W, C) images.

  Returns:
    (B, H, W, C) transformed images (bilinear, reflection padding,
    ``align_corners=False``, as in FOMM).
  """
  b, h, w, _ = frame.shape
  grid = coordinate_grid(h, w, dtype=jnp.promote_types(frame.dtype, jnp.float32)).reshape(-1, 2)
  grid = warp_coordinates(tps, grid).reshape(b, h, w, 2)
  return grid_sample(frame, grid, mode="bilinear", padding_mode="reflection",
                     align_corners=False)
