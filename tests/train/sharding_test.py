"""Mesh construction and the FSDP layout of parameters."""

import jax
import pytest
from jax.sharding import PartitionSpec

from mcc_jax.train import sharding


def test_mesh_shape_fills_one_axis_and_names_bad_sizes():
  assert sharding.mesh_shape({"data": -1, "fsdp": 2}, 8) == (4, 2)
  assert sharding.mesh_shape({"data": 2, "fsdp": -1}, 8) == (2, 4)
  with pytest.raises(ValueError, match="does not fit the 8 devices"):
    sharding.mesh_shape({"data": 3, "fsdp": -1}, 8)
  mesh = sharding.make_mesh({"data": -1, "fsdp": 2})
  assert dict(mesh.shape) == {"data": len(jax.devices()) // 2, "fsdp": 2}


def test_parameter_spec_splits_the_largest_divisible_axis():
  assert sharding.parameter_spec((3, 3, 64, 128), 2, 16) == PartitionSpec(None, None, None, "fsdp")
  assert sharding.parameter_spec((3, 3, 64, 3), 2, 16) == PartitionSpec(None, None, "fsdp", None)
  assert sharding.parameter_spec((7, 5), 2, 1) == PartitionSpec()      # nothing divisible
  assert sharding.parameter_spec((1024, 32), 2, 10**6) == PartitionSpec()  # too small
  assert sharding.parameter_spec((1024, 32), 1, 1) == PartitionSpec()


def test_batch_size_must_divide_over_data_and_fsdp():
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2})
  sharding.check_batch_size(16, mesh)
  with pytest.raises(ValueError, match="config.batch_size=12 cannot be split"):
    sharding.check_batch_size(12, mesh)


def test_mesh_places_devices_by_topology_with_automatic_axes(monkeypatch):
  # jax.make_mesh asks mesh_utils for a topology-aware order (on CPU it is the plain
  # order, so a stand-in that reverses it shows whose order the mesh has).
  import inspect  # pylint: disable=import-outside-toplevel
  from jax.sharding import AxisType  # pylint: disable=import-outside-toplevel
  mesh_utils = inspect.getmodule(jax.make_mesh).mesh_utils  # what jax.make_mesh calls
  real = mesh_utils.create_device_mesh
  monkeypatch.setattr(mesh_utils, "create_device_mesh",
                      lambda shape, devices, **kw: real(shape, devices[::-1], **kw))
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2})
  assert [d.id for d in mesh.devices.flat] == [d.id for d in jax.devices()[::-1]]
  assert mesh.axis_names == ("data", "fsdp") and dict(mesh.shape) == {"data": 4, "fsdp": 2}
  assert tuple(mesh.axis_types) == (AxisType.Auto, AxisType.Auto)
