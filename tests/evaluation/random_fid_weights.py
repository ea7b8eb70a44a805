"""Random weights in the layout of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.

The real file cannot be fetched in tests; a state dict with the same names and shapes
(taken from the Flax network, converted back to PyTorch's layout) and random values
stands in for it. BatchNorm statistics are random too, so a converter that mixed up
``running_mean`` and ``bias`` (or forgot the epsilon) would show.
"""

import jax
import numpy as np

from mcc_jax.evaluation import inception

_BN_NAMES = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """pytorch-fid FID Inception tensor name -> float32 array (int64 for counters)."""
  rng = np.random.default_rng(seed)
  state = {}
  flat = jax.tree_util.tree_flatten_with_path(inception.expected_variables())[0]
  for path, leaf in flat:
    keys = [p.key for p in path]
    module, leaf_name = ".".join(keys[1:-1]), keys[-1]
    shape = leaf.shape
    if leaf_name == "kernel":
      fan_in = int(np.prod(shape[:3]))
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).transpose(3, 2, 0, 1)
      state[f"{module}.weight"] = value
      continue
    low, high = {"scale": (0.5, 1.5), "bias": (-0.2, 0.2), "mean": (-0.2, 0.2),
                 "var": (0.5, 1.5)}[leaf_name]
    state[f"{module}.{_BN_NAMES[leaf_name]}"] = rng.uniform(low, high, shape)
    if leaf_name == "var":
      state[f"{module}.num_batches_tracked"] = np.asarray(1000, np.int64)
  # The classifier of the 1008 TensorFlow classes: in the file, unused for pool3.
  state["fc.weight"] = rng.normal(0.0, 0.01, (1008, inception.FEATURE_DIM))
  state["fc.bias"] = np.zeros((1008,))
  return {name: (value if value.dtype == np.int64 else np.asarray(value, np.float32))
          for name, value in state.items()}


def save_pth(path, seed: int = 0) -> dict[str, np.ndarray]:
  """Writes :func:`random_state_dict` as a ``.pth`` file; returns the numpy state dict."""
  import torch  # pylint: disable=import-outside-toplevel

  state = random_state_dict(seed)
  torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)
  return state
