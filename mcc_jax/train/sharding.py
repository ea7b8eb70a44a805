"""The device mesh and how the training state and batches are laid out on it.

Two mesh axes, sized in ``config.mesh``:

* ``data``: pure data parallelism; parameters are replicated along it;
* ``fsdp``: fully sharded data parallelism; the batch is split along it too, and every
  large parameter (and its optimiser moments and EMA copy) is split along its largest
  axis that the ``fsdp`` size divides, so each device holds a slice.

The batch is split over both axes, so the global batch must be a multiple of
``data * fsdp``. Small arrays (below ``config.mesh.min_sharded_size`` elements) stay
replicated: slicing them saves no memory worth a collective.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")


def mesh_shape(config: Mapping[str, Any], num_devices: int) -> tuple[int, int]:
  """(data, fsdp) sizes; one of them may be -1 (all remaining devices).

  Raises:
    ValueError: naming ``config.mesh.data`` / ``config.mesh.fsdp`` when the sizes do not
      multiply to the number of devices.
  """
  data, fsdp = int(config["data"]), int(config["fsdp"])
  if data == -1 and fsdp == -1:
    raise ValueError("config.mesh: at most one of data and fsdp may be -1")
  if data == -1:
    data = num_devices // fsdp if fsdp > 0 and num_devices % fsdp == 0 else 0
  elif fsdp == -1:
    fsdp = num_devices // data if data > 0 and num_devices % data == 0 else 0
  if data <= 0 or fsdp <= 0 or data * fsdp != num_devices:
    raise ValueError(
        f"config.mesh: data={config['data']} x fsdp={config['fsdp']} does not fit the "
        f"{num_devices} devices; sizes must multiply to {num_devices} (use -1 for one of them)")
  return data, fsdp


def make_mesh(config: Mapping[str, Any], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """The ``(data, fsdp)`` mesh of ``config.mesh`` over ``devices`` (default: all).

  Devices are placed by ``jax.make_mesh``, which follows the interconnect's topology
  (on a TPU slice, neighbours along an axis are neighbours on the chip torus), with
  both axes in automatic sharding mode as the step's shardings expect. A multi-slice
  TPU job would need a hybrid mesh (``mesh_utils.create_hybrid_device_mesh``), which
  ``jax.make_mesh`` refuses with a message.
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(config, len(devices))
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "batch_size") -> None:
  """Raises naming ``config.<field>`` when the mesh or the hosts cannot split a batch evenly.

  Args:
    batch_size: the global batch size.
    mesh: the device mesh.
    field: the configuration field it comes from (``batch_size``, ``eval_batch_size``).
  """
  shards = math.prod(mesh.shape[axis] for axis in BATCH_AXES)
  if batch_size % shards:
    raise ValueError(
        f"config.{field}={batch_size} cannot be split over the mesh "
        f"{dict(mesh.shape)}: it must be a multiple of data x fsdp = {shards}")
  if batch_size % jax.process_count():
    raise ValueError(f"config.{field}={batch_size} is not a multiple of the "
                     f"{jax.process_count()} processes")


def parameter_spec(shape: Sequence[int], fsdp: int, min_sharded_size: int) -> PartitionSpec:
  """Where one parameter-shaped array lives: split its largest ``fsdp``-divisible axis.

  Args:
    shape: the array's shape.
    fsdp: size of the ``fsdp`` mesh axis.
    min_sharded_size: arrays with fewer elements are replicated.

  Returns:
    A ``PartitionSpec`` naming ``'fsdp'`` on at most one axis.
  """
  if fsdp == 1 or math.prod(shape) < min_sharded_size:
    return PartitionSpec()
  candidates = [axis for axis, size in enumerate(shape) if size % fsdp == 0]
  if not candidates:
    return PartitionSpec()
  axis = max(candidates, key=lambda a: (shape[a], a))
  spec = [None] * len(shape)
  spec[axis] = "fsdp"
  return PartitionSpec(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, min_sharded_size: int) -> Any:
  """NamedShardings for every leaf of a (possibly abstract) training state.

  Arrays are laid out by :func:`parameter_spec`, so a parameter, its Adam moments and
  its EMA copy share one layout; scalars (step, counts) and keys are replicated.
  """
  fsdp = mesh.shape["fsdp"]

  def leaf(x):
    shape = getattr(x, "shape", ())
    return NamedSharding(mesh, parameter_spec(shape, fsdp, min_sharded_size))

  return jax.tree.map(leaf, abstract_state)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batches are split along their leading axis over ``data`` and ``fsdp``."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, PartitionSpec())


def host_value(tree: Any) -> Any:
  """Replicated ``jax.Array``s (metrics, pictures) as numpy arrays, on any process.

  On several processes a replicated array spans devices this process cannot address;
  every device holds the whole value, so this process's first shard is the value.
  """

  def leaf(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)

  return jax.tree.map(leaf, tree)
