"""Vector quantiser: nearest codes, straight-through gradients, loss, allocation, sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mcc_jax import ops
from mcc_jax.ops.quantize import uniform_codebook_init


def _data(seed=0, shape=(4, 6, 5, 8), num_codes=64):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=shape).astype(np.float32)
  codebook = rng.normal(size=(num_codes, shape[-1])).astype(np.float32)
  return z, codebook


def _brute_force_indices(z, codes):
  """argmin over an explicit (tokens, codes, dim) difference tensor."""
  flat = z.reshape(-1, z.shape[-1]).astype(np.float64)
  distances = ((flat[:, None, :] - codes[None, :, :].astype(np.float64))**2).sum(-1)
  return distances.argmin(axis=1).reshape(z.shape[:-1])


def test_indices_equal_brute_force_argmin():
  for seed in range(3):
    z, codebook = _data(seed)
    out = ops.quantize(jnp.asarray(z), jnp.asarray(codebook))
    np.testing.assert_array_equal(np.asarray(out.indices), _brute_force_indices(z, codebook))
    # z + sg(q - z) equals q up to one rounding step, as in every straight-through VQ.
    np.testing.assert_allclose(np.asarray(out.quantized),
                               codebook[_brute_force_indices(z, codebook)], rtol=0, atol=1e-6)


def test_straight_through_gradient_is_identity():
  z, codebook = _data(1)
  cotangent = np.random.default_rng(3).normal(size=z.shape).astype(np.float32)
  grad = jax.grad(lambda v: jnp.sum(ops.quantize(v, jnp.asarray(codebook)).quantized * cotangent))(
      jnp.asarray(z))
  np.testing.assert_allclose(np.asarray(grad), cotangent, rtol=0, atol=0)


@pytest.mark.parametrize("beta", [0.25, 1.0])
def test_loss_and_its_gradients_follow_the_formula(beta):
  z, codebook = _data(2)
  q = codebook[_brute_force_indices(z, codebook)]
  # mean((sg[z] - q)^2) + beta * mean((sg[q] - z)^2): equal forward terms ...
  expected = (1.0 + beta) * np.mean((z.astype(np.float64) - q)**2)
  out = ops.quantize(jnp.asarray(z), jnp.asarray(codebook), beta=beta)
  np.testing.assert_allclose(float(out.loss), expected, rtol=1e-5)

  # ... but different gradients: beta pulls z towards q, 1 pulls the codes towards z.
  dz, dcodes = jax.grad(lambda v, c: ops.quantize(v, c, beta=beta).loss, argnums=(0, 1))(
      jnp.asarray(z), jnp.asarray(codebook))
  np.testing.assert_allclose(np.asarray(dz), 2 * beta * (z - q) / z.size, rtol=1e-4, atol=1e-9)
  expected_dcodes = np.zeros_like(codebook)
  np.add.at(expected_dcodes, _brute_force_indices(z, codebook).ravel(),
            (2 * (q - z) / z.size).reshape(-1, z.shape[-1]))
  np.testing.assert_allclose(np.asarray(dcodes), expected_dcodes, rtol=1e-4, atol=1e-9)


def test_statistics_match_numpy():
  z, codebook = _data(3, num_codes=40)
  out = ops.quantize(jnp.asarray(z), jnp.asarray(codebook))
  counts = np.bincount(_brute_force_indices(z, codebook).ravel(), minlength=40)
  probs = counts / counts.sum()
  np.testing.assert_allclose(float(out.perplexity),
                             np.exp(-np.sum(probs * np.log(probs + 1e-10))), rtol=1e-5)
  np.testing.assert_allclose(float(out.usage), np.mean(counts > 0), rtol=1e-6)


@pytest.mark.parametrize(
    "allocation,expected",
    [("prefix", [(0, 16), (0, 32), (0, 48), (0, 64)]),
     ("equal", [(0, 16), (16, 32), (32, 48), (48, 64)]),
     ("shared", [(0, 64)] * 4)])
def test_allocation_exposes_exactly_the_right_rows(allocation, expected):
  z, codebook = _data(4)
  for scale, (start, stop) in enumerate(expected):
    assert ops.code_range(64, scale, 4, allocation) == (start, stop)
    rows = ops.allocated_codes(jnp.asarray(codebook), scale, 4, allocation)
    np.testing.assert_array_equal(np.asarray(rows), codebook[start:stop])
    out = ops.quantize(jnp.asarray(z), jnp.asarray(codebook), scale_index=scale, num_scales=4,
                       allocation=allocation)
    # Indices address the full codebook and come only from the allocated rows.
    local = _brute_force_indices(z, codebook[start:stop])
    np.testing.assert_array_equal(np.asarray(out.indices), local + start)


def test_allocation_errors_name_the_problem():
  with pytest.raises(ValueError, match="must be one of"):
    ops.code_range(64, 0, 4, "random")
  with pytest.raises(ValueError, match="divisible by the number of scales"):
    ops.code_range(66, 0, 4, "prefix")
  with pytest.raises(ValueError, match=r"scale_index must be in \[0, 4\)"):
    ops.code_range(64, 4, 4, "prefix")
  with pytest.raises(ValueError, match="dimension 8 but codes have 4"):
    ops.quantize(jnp.zeros((2, 8)), jnp.zeros((16, 4)))


def test_lookup_inverts_quantisation():
  z, codebook = _data(5)
  out = ops.quantize(jnp.asarray(z), jnp.asarray(codebook))
  np.testing.assert_array_equal(np.asarray(ops.lookup(jnp.asarray(codebook), out.indices)),
                                codebook[_brute_force_indices(z, codebook)])


def test_module_initialisation_and_methods():
  module = ops.VectorQuantizer(num_codes=32, code_dim=4, beta=0.25, num_scales=4,
                               allocation="equal")
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 3, 4))
  variables = module.init(jax.random.PRNGKey(1), z)
  codebook = np.asarray(variables["params"]["codebook"])
  assert codebook.shape == (32, 4)
  assert np.all(np.abs(codebook) <= 1 / 32) and codebook.std() > 0.2 / 32
  out = module.apply(variables, z, scale_index=2)
  assert np.all((np.asarray(out.indices) >= 16) & (np.asarray(out.indices) < 24))
  rows = module.apply(variables, 1, method=ops.VectorQuantizer.codes)
  np.testing.assert_array_equal(np.asarray(rows), codebook[8:16])
  back = module.apply(variables, out.indices, method=ops.VectorQuantizer.lookup)
  np.testing.assert_array_equal(np.asarray(back), codebook[np.asarray(out.indices)])
  np.testing.assert_allclose(np.asarray(out.quantized), np.asarray(back), atol=1e-6)


def test_sharded_batch_gives_identical_results():
  devices = np.array(jax.devices())
  assert devices.size == 8, "tests/conftest.py asks for 8 CPU devices"
  mesh = Mesh(devices, ("data",))
  z, codebook = _data(6, shape=(16, 8, 8, 16), num_codes=128)

  def run(v, c):
    out = ops.quantize(v, c, scale_index=2, num_scales=4, allocation="prefix")
    return out.quantized, out.indices, out.loss, out.perplexity

  single = jax.jit(run)(jnp.asarray(z), jnp.asarray(codebook))
  z_sharded = jax.device_put(z, NamedSharding(mesh, PartitionSpec("data")))
  c_replicated = jax.device_put(codebook, NamedSharding(mesh, PartitionSpec()))
  sharded = jax.jit(run)(z_sharded, c_replicated)
  assert len(z_sharded.sharding.device_set) == 8
  np.testing.assert_array_equal(np.asarray(sharded[0]), np.asarray(single[0]))
  np.testing.assert_array_equal(np.asarray(sharded[1]), np.asarray(single[1]))
  # The loss and perplexity are sums of 16,384 terms split over the devices in another
  # order: up to ~2 log2(N) float32 ulps apart; a dropped or doubled shard moves them 1e-2.
  np.testing.assert_allclose(float(sharded[2]), float(single[2]), rtol=1e-5)
  np.testing.assert_allclose(float(sharded[3]), float(single[3]), rtol=1e-5)


def test_uniform_init_bounds():
  codebook = uniform_codebook_init(jax.random.PRNGKey(0), (1024, 32))
  assert float(jnp.max(jnp.abs(codebook))) <= 1 / 1024
