"""Fast checks of the training parity tool's pieces that need no official checkout.

The tool's float32 verdict takes its rounding floor from official runs under each of
PyTorch's CPU convolution backends; if the backend switch did nothing, both backends'
runs would be one draw counted twice and the floor would be sampled less than the tool
says. The cache must hand back exactly the runs it was given, and only for the same key.
"""


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcc_jax.testing import training_parity  # noqa: E402  (after the torch check)


def _convolve(backend, x, w):
  with training_parity._convolution_backend(torch, backend):  # pylint: disable=protected-access
    return torch.nn.functional.conv2d(x, w, padding=1).numpy()


def test_the_two_convolution_backends_round_differently_and_the_switch_is_undone():
  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.standard_normal((2, 64, 32, 32)).astype(np.float32))
  w = torch.from_numpy((rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32))
  exact = torch.nn.functional.conv2d(x.double(), w.double(), padding=1).numpy()
  before = torch.backends.mkldnn.enabled
  onednn, native = _convolve("onednn", x, w), _convolve("native", x, w)
  assert torch.backends.mkldnn.enabled == before
  # Both are float32 convolutions of the same function ...
  for result in (onednn, native):
    assert np.linalg.norm(result - exact) / np.linalg.norm(exact) < 1e-5
  # ... summed in different orders: a backend switch that did nothing gives equal bits.
  assert np.mean(onednn != native) > 0.1
  np.testing.assert_array_equal(_convolve("onednn", x, w), onednn)


def test_a_failing_step_still_undoes_the_switch():
  before = torch.backends.mkldnn.enabled
  with pytest.raises(RuntimeError):
    with training_parity._convolution_backend(torch, "native"):  # pylint: disable=protected-access
      assert not torch.backends.mkldnn.enabled
      raise RuntimeError("step failed")
  assert torch.backends.mkldnn.enabled == before


def test_the_run_cache_returns_what_it_stored_for_the_same_key_only(tmp_path):
  path = tmp_path / "runs.pkl"
  runs = training_parity._OfficialRuns(path, (1, 0, 3))  # pylint: disable=protected-access
  summary = {"terms": {"l1": 0.5}, "grads": {"generator": np.arange(3.0)}}
  runs["float32 native 0"] = summary
  runs.save()
  again = training_parity._OfficialRuns(path, (1, 0, 3))  # pylint: disable=protected-access
  assert "float32 native 0" in again and "float32 onednn 0" not in again
  assert again["float32 native 0"]["terms"] == {"l1": 0.5}
  np.testing.assert_array_equal(again["float32 native 0"]["grads"]["generator"], np.arange(3.0))
  other_seed = training_parity._OfficialRuns(path, (1, 1, 3))  # pylint: disable=protected-access
  assert "float32 native 0" not in other_seed


def test_an_unknown_backend_is_refused_before_any_work(capsys):
  with pytest.raises(SystemExit) as exit_info:
    training_parity.main(["--official-repo", "/nonexistent", "--float64-reference",
                                "--official-backends", "onednn,cudnn"])
  assert exit_info.value.code == 2
  assert "cudnn" in capsys.readouterr().err
  with pytest.raises(ValueError, match="non-empty subset"):
    training_parity.run("/nonexistent", backends=("mkl",))
