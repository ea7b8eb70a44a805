"""Tests of host-local batches to global jax.Arrays on a Mesh of 8 CPU devices."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines import global_arrays
from mcc_jax.data_pipelines.config import datasets_config


@pytest.fixture
def mesh():
  devices = np.asarray(jax.devices())
  if devices.size < 8:
    pytest.skip("needs the 8 virtual CPU devices set up in tests/conftest.py")
  return Mesh(devices[:8].reshape(4, 2), ("data", "model"))


def test_batch_axis_is_sharded_over_the_data_axis(mesh):
  local = {"source": np.arange(8 * 4 * 4 * 3, dtype=np.float32).reshape(8, 4, 4, 3),
           "driving": np.ones((8, 4, 4, 3), np.float32)}
  batch = global_arrays.to_global_batch(local, mesh)
  for key, value in batch.items():
    assert isinstance(value, jax.Array)
    assert value.shape == local[key].shape  # One process: global == local.
    assert value.sharding.spec == PartitionSpec("data")
    np.testing.assert_array_equal(np.asarray(value), local[key])
  # Each device holds a quarter of the batch (the 'model' axis replicates it).
  shards = batch["source"].addressable_shards
  assert len(shards) == 8 and {s.data.shape[0] for s in shards} == {2}
  for shard in shards:
    np.testing.assert_array_equal(np.asarray(shard.data), local["source"][shard.index])


def test_batch_split_over_two_mesh_axes(mesh):
  local = {"x": np.arange(16, dtype=np.int32)}
  batch = global_arrays.to_global_batch(local, mesh, ("data", "model"))
  assert batch["x"].sharding.spec == PartitionSpec(("data", "model"))
  assert {s.data.shape[0] for s in batch["x"].addressable_shards} == {2}


def test_uneven_batch_and_unknown_axis_are_reported(mesh):
  with pytest.raises(ValueError, match="'source'.*not divisible by the 4 shards"):
    global_arrays.to_global_batch({"source": np.zeros((6, 2), np.float32)}, mesh)
  with pytest.raises(ValueError, match="'batch' is not an axis"):
    global_arrays.to_global_batch({"x": np.zeros((8,))}, mesh, "batch")


def test_pipeline_batches_become_global_arrays(mesh):
  config = datasets_config(name="synthetic", image_size=16,
                           synthetic=dict(num_train_identities=2, num_frames=4))
  dataset = data_pipelines.build_train_pipeline(config, 8, seed=0, process_index=0,
                                                process_count=1)
  for _, batch in zip(range(2), global_arrays.global_batches(
      dataset.as_numpy_iterator(), mesh)):
    assert batch["source"].shape == (8, 16, 16, 3)
    assert batch["source"].sharding.spec == PartitionSpec("data")
    summed = jax.jit(lambda b: (b["source"] - b["driving"]).sum())(batch)
    assert np.isfinite(float(summed))
