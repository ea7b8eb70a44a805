"""Host-local batches to global ``jax.Array``s sharded along the batch axis.

Each host's pipeline yields only its share of a global batch. The arrays handed to a
jitted step must be global: ``jax.make_array_from_process_local_data`` stitches the
hosts' shares into one array whose leading axis is sharded over the mesh axes that
carry the batch (data parallelism); the other axes are replicated.

This module imports JAX only (no TensorFlow): it accepts numpy arrays.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_sharding(mesh: Mesh, batch_axes: str | tuple[str, ...] = "data"
                   ) -> NamedSharding:
  """Returns the sharding that splits the leading (batch) axis over `batch_axes`.

  Args:
    mesh: the device mesh.
    batch_axes: mesh axis name, or names, that the batch is split over.

  Returns:
    ``NamedSharding(mesh, PartitionSpec(batch_axes))``.

  Raises:
    ValueError: if a name is not an axis of `mesh`.
  """
  names = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes)
  for name in names:
    if name not in mesh.axis_names:
      raise ValueError(f"batch axis {name!r} is not an axis of the mesh "
                       f"{dict(mesh.shape)}")
  return NamedSharding(mesh, PartitionSpec(names if len(names) > 1 else names[0]))


def to_global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh,
                    batch_axes: str | tuple[str, ...] = "data") -> dict[str, jax.Array]:
  """Assembles the global batch from this host's share.

  Args:
    local_batch: dict of arrays whose leading axis is this host's part of the batch
      (e.g. ``source``/``driving`` float32 ``(B_local, S, S, 3)``). All hosts must pass
      the same shapes.
    mesh: the device mesh.
    batch_axes: mesh axis name(s) the batch is split over.

  Returns:
    Dict of ``jax.Array``s of global shape ``(B_local * process_count, ...)``, sharded
    along the leading axis.

  Raises:
    ValueError: if the global batch does not divide evenly over the batch axes.
  """
  sharding = batch_sharding(mesh, batch_axes)
  names = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes)
  shards = math.prod(mesh.shape[name] for name in names)
  global_batch = {}
  for key, value in local_batch.items():
    value = np.asarray(value)
    global_size = value.shape[0] * jax.process_count()
    if global_size % shards:
      raise ValueError(f"batch field {key!r}: the global batch size {global_size} "
                       f"({value.shape[0]} per host) is not divisible by the {shards} "
                       f"shards of mesh axes {names}")
    global_batch[key] = jax.make_array_from_process_local_data(
        sharding, value, (global_size,) + value.shape[1:])
  return global_batch


def global_batches(local_batches: Iterable[Mapping[str, np.ndarray]], mesh: Mesh,
                   batch_axes: str | tuple[str, ...] = "data"
                   ) -> Iterator[dict[str, jax.Array]]:
  """Wraps an iterable of host-local batches (e.g. ``dataset.as_numpy_iterator()``).

  Args:
    local_batches: host-local batches.
    mesh: the device mesh.
    batch_axes: mesh axis name(s) the batch is split over.

  Yields:
    Global batches, as from `to_global_batch`.
  """
  for local_batch in local_batches:
    yield to_global_batch(local_batch, mesh, batch_axes)
