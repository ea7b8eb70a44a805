"""The Flax FID InceptionV3 against pytorch-fid's PyTorch model, and its weight loading."""

import os
import sys

import numpy as np
import pytest

from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.evaluation import fid
from mcc_jax.evaluation import inception

sys.path.insert(0, os.path.dirname(__file__))
import random_fid_weights  # noqa: E402

# Kept alive for the whole session: the schemas disappear when the library is collected.
_TORCHVISION_STUBS = []


def _import_pytorch_fid():
  """pytorch_fid.inception, working around a torchvision wheel built for another torch.

  A torchvision wheel built for CUDA cannot load its C++ operators into a CPU-only
  torch; torchvision 0.28 then fails at import while registering fake kernels for
  ``nms`` and ``qnms``. The FID network uses no torchvision operator, so the two
  schemas are declared and the import retried.
  """
  torch = pytest.importorskip("torch")
  pytest.importorskip("pytorch_fid")
  try:
    import torchvision  # pylint: disable=import-outside-toplevel,unused-import  # noqa: F401
  except RuntimeError as error:
    if "torchvision::" not in str(error):
      raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
      del sys.modules[name]
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
      library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_STUBS.append(library)
  from pytorch_fid import inception as pytorch_fid_inception  # pylint: disable=import-outside-toplevel
  return pytorch_fid_inception


@pytest.fixture(scope="module", name="state")
def _state():
  return random_fid_weights.random_state_dict(seed=0)


def test_pool3_features_match_pytorch_fid(state, monkeypatch):
  torch = pytest.importorskip("torch")
  pytorch_fid_inception = _import_pytorch_fid()
  # pytorch-fid downloads the weights while building the model; hand it the random ones.
  tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
  monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                      lambda *args, **kwargs: tensors)
  reference_model = pytorch_fid_inception.InceptionV3([3], use_fid_inception=True).eval()
  frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
  with torch.no_grad():
    images = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    expected = reference_model(images)[0][:, :, 0, 0].numpy()

  features = fid.InceptionFeatures(inception.convert_state_dict(state), batch_size=2)(frames)

  assert features.shape == (2, 2048)
  scale = np.abs(expected).max()
  assert scale > 0.1  # Not a degenerate all-zero output.
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * scale)


def test_convert_rejects_missing_and_extra_tensors(state):
  missing = dict(state)
  del missing["Mixed_6b.branch7x7_2.bn.running_var"]
  with pytest.raises(ConversionError, match="Mixed_6b.branch7x7_2.bn.running_var"):
    inception.convert_state_dict(missing)
  extra = dict(state)
  extra["Mixed_6b.surplus.weight"] = np.zeros((3,), np.float32)
  with pytest.raises(ConversionError, match="surplus"):
    inception.convert_state_dict(extra)


def test_load_fid_weights_errors(tmp_path, monkeypatch):
  with pytest.raises(fid.FIDWeightsError, match="--fid-weights .*no such file"):
    fid.load_fid_weights(tmp_path / "absent.pth")
  not_torch = tmp_path / "not_torch.pth"
  not_torch.write_bytes(b"not a checkpoint")
  with pytest.raises(fid.FIDWeightsError, match="not pytorch-fid's FID Inception weights"):
    fid.load_fid_weights(not_torch)
  monkeypatch.setitem(sys.modules, "torch", None)  # As if torch were not installed.
  with pytest.raises(fid.FIDWeightsError, match="needs torch.*pip install torch"):
    fid.load_fid_weights(not_torch)


def test_load_fid_weights_reads_a_pth(tmp_path, state):
  pytest.importorskip("torch")
  path = tmp_path / fid.WEIGHTS_FILE
  random_fid_weights.save_pth(path, seed=0)
  variables = fid.load_fid_weights(path)
  kernel = variables["params"]["Conv2d_1a_3x3"]["conv"]["kernel"]
  np.testing.assert_array_equal(kernel, state["Conv2d_1a_3x3.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                state["Mixed_7c.branch_pool.bn.running_var"])
