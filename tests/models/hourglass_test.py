"""Hourglass: widths, skip concatenation, the list of decoder outputs, size checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models.hourglass import Hourglass


def test_decoder_outputs_concatenate_the_skips_and_the_last_is_the_default_output():
  model = Hourglass(block_expansion=4, max_features=12, num_blocks=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 24, 5))
  variables = model.init(jax.random.PRNGKey(1), x, train=False)
  kernels = {name: block["conv"]["kernel"].shape for name, block in variables["params"].items()}
  # Encoder widths 8, 12 (capped), 12; decoder outputs 12, 8, 4 plus the skips.
  assert kernels == {"down_0": (3, 3, 5, 8), "down_1": (3, 3, 8, 12), "down_2": (3, 3, 12, 12),
                     "up_0": (3, 3, 12, 12), "up_1": (3, 3, 24, 8), "up_2": (3, 3, 16, 4)}
  outputs = model.apply(variables, x, train=False, all_outputs=True)
  assert [o.shape for o in outputs] == [(2, 4, 6, 24), (2, 8, 12, 16), (2, 16, 24, 9)]
  last = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(np.asarray(last), np.asarray(outputs[-1]))
  # The finest skip is the input itself, after the decoder's own channels.
  np.testing.assert_array_equal(np.asarray(last[..., 4:]), np.asarray(x))
  assert float(jnp.min(last[..., :4])) >= 0.0  # ReLU output.


@pytest.mark.parametrize("shape", [(1, 12, 16, 3), (1, 16, 4, 3)])
def test_rejects_sizes_that_do_not_halve_cleanly(shape):
  model = Hourglass(block_expansion=4, max_features=8, num_blocks=3)
  with pytest.raises(ValueError, match=r"num_blocks=3.*multiples of 8"):
    jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
                   jax.ShapeDtypeStruct(shape, jnp.float32))
