"""Exports shared by the export tests: each model is exported once per session.

* the tiny model (64x64, random weights; the session's ``tiny_checkpoint`` with random
  jacobian-head weights, so that jacobians differ from the identity and from keypoint
  to keypoint): ONNX and StableHLO, through the command line;
* the paper's vox256 model (random weights, seeded): ONNX only, through the library (no
  checkpoint written), for the tests marked slow; once per module, freed after it.
"""

import jax
import numpy as np
import pytest

from mcc_jax import cli
from mcc_jax import config_cli
from mcc_jax import inference
from mcc_jax import media
from mcc_jax.checkpoints.model_files import load_model_checkpoint
from mcc_jax.checkpoints.model_files import save_model_checkpoint
from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.export.exporter import export_model
from mcc_jax.export.graphs import model_graphs
from mcc_jax.models import factory
from mcc_jax.models.reenactment import init_variables


def _export_with_the_command_line(checkpoint, fmt, output):
  assert cli.main(["export", "--checkpoint", str(checkpoint), "--format", fmt,
                   "--output", str(output)]) == 0
  return output


@pytest.fixture(scope="session")
def tiny_jacobian_checkpoint(tiny_checkpoint, tmp_path_factory):
  """(path, config) of the tiny checkpoint with a random jacobian head.

  Its initialisation (zero kernel, identity bias) makes every jacobian the identity, so
  that nothing would tell a source jacobian from a driving one, or a jacobian from its
  transpose. N(0, 1 / fan_in) kernel weights move them by 0.15 on average (determinants
  0.5 and more: invertible).
  """
  path, config = tiny_checkpoint
  variables, _ = load_model_checkpoint(path)
  head = variables["motion_estimator"]["params"]["keypoint_detector"]["jacobian_head"]
  kernel = np.asarray(head["kernel"])
  head["kernel"] = (np.random.default_rng(0).standard_normal(kernel.shape, np.float32)
                    / np.sqrt(np.prod(kernel.shape[:-1]))).astype(np.float32)
  directory = tmp_path_factory.mktemp("tiny_jacobian_checkpoint") / "checkpoint"
  save_model_checkpoint(directory, variables, config)
  return directory, config


@pytest.fixture(scope="session")
def tiny_model(tiny_jacobian_checkpoint):
  path, _ = tiny_jacobian_checkpoint
  return inference.load_model(checkpoint=path)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_jacobian_checkpoint, tmp_path_factory):
  """The ONNX export of the tiny checkpoint (its directory)."""
  path, _ = tiny_jacobian_checkpoint
  return _export_with_the_command_line(path, "onnx",
                                       tmp_path_factory.mktemp("tiny_onnx") / "export")


@pytest.fixture(scope="session")
def tiny_stablehlo(tiny_jacobian_checkpoint, tmp_path_factory):
  """The StableHLO export of the tiny checkpoint (its directory)."""
  path, _ = tiny_jacobian_checkpoint
  return _export_with_the_command_line(path, "stablehlo",
                                       tmp_path_factory.mktemp("tiny_stablehlo") / "export")


@pytest.fixture(scope="session")
def tiny_jax_graphs(tiny_model):
  """The tiny model's graphs, jit-compiled in JAX: the reference of every format."""
  return {name: jax.jit(graph.function) for name, graph in model_graphs(tiny_model).items()}


@pytest.fixture(scope="session")
def tiny_frames():
  """Eight frames of the sample clip at 64x64, a third of a second apart."""
  clip = sample_clip.decode_clip()[::10][:8]
  return np.stack([media.crop_and_resize(f, None, 64) for f in clip])


def _random_variables(model_config, seed):
  """Seeded random values of every variable the networks use for inference, drawn in
  numpy: a second, where initialising the networks at 256x256 (``random_variables``)
  takes XLA:CPU 13 to 35 s. Kernels N(0, 1 / fan_in) (the scale of the networks' own
  initialisation), norm scales and BatchNorm variances near 1, other values small, and
  jacobians near the identity (the jacobian head's bias), so that they stay invertible.
  """
  estimator = factory.build_motion_estimator(model_config)
  generator = factory.build_generator(model_config)
  key = jax.random.PRNGKey(0)
  shapes = jax.eval_shape(lambda: init_variables(estimator, generator,
                                                 model_config.image_size, key, key,
                                                 train=False))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    names = [str(getattr(entry, "key", entry)) for entry in path]
    shape = leaf.shape
    noise = rng.standard_normal(shape, dtype=np.float32)
    if names[-1] == "kernel":
      scale = 0.1 if "jacobian_head" in names else 1.0
      return noise * np.float32(scale / np.sqrt(np.prod(shape[:-1])))
    if names[-1] == "bias" and "jacobian_head" in names:
      return np.tile(np.float32([1, 0, 0, 1]), shape[0] // 4) + 0.05 * noise
    if names[-1] in ("scale", "var"):
      return 1.0 + 0.1 * noise
    return 0.1 * noise

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture(scope="module")
def vox256_model():
  """The paper's configuration with seeded random weights (nothing written to disk)."""
  config = config_cli.load_config(str(config_cli.shipped_config_path("vox256")))
  variables = _random_variables(config.model, seed=0)
  return inference.LoadedModel(
      config=config, variables=variables,
      estimator=factory.build_motion_estimator(config.model),
      generator=factory.build_generator(config.model), description="random weights (seed 0)")


@pytest.fixture(scope="module")
def vox256_onnx(vox256_model, tmp_path_factory):
  directory = tmp_path_factory.mktemp("vox256_onnx") / "export"
  export_model(vox256_model, directory, "onnx")
  return directory


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
  """Frees each module's compiled programs (the vox256 model's hold gigabytes on CPU):
  the suite's later tests, whole training runs in subprocesses among them, need the
  memory."""
  yield
  jax.clear_caches()
  # (tests/conftest.py then hands the freed heap back to the system.)
