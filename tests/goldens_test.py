"""mcc-jax against golden outputs of the official networks, without torch or the checkout.

``tests/goldens/official_forward.{npz,json}`` hold the official networks' outputs (the
full 256x256 paper model, batch 1, eval mode) for weights and inputs that
``mcc_jax.testing.goldens`` draws from a seed with numpy alone; they were written by
``tools/make_official_goldens.py`` from a checkout of the official code. Here the same
weights are rebuilt, converted with ``mcc_jax.convert`` and run through our networks;
each output is judged with ``mcc_jax.testing.parity.judge`` (within 1e-4 of the official
float32 output, or no further from its float64 output than 1.5x the official float32
output is), so the verdict does not depend on the machine's float32 kernels.
"""

import json
import pathlib

import jax
import numpy as np
import pytest

from mcc_jax.configs import vox256
from mcc_jax.convert.generator import convert_discriminator, convert_generator
from mcc_jax.convert.motion_estimator import convert_motion_estimator
from mcc_jax.models import factory
from mcc_jax.testing import goldens, parity

GOLDENS = pathlib.Path(__file__).resolve().parent / "goldens" / "official_forward"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden():
  metadata = json.loads(GOLDENS.with_suffix(".json").read_text())
  with np.load(GOLDENS.with_suffix(".npz")) as data:
    arrays = {k: data[k] for k in data.files}
  return metadata, arrays


@pytest.fixture(scope="module")
def ours(golden):
  metadata, arrays = golden
  with jax.default_matmul_precision("highest"):
    config = vox256.get_config().model
    generator = factory.build_generator(config)
    estimator = factory.build_motion_estimator(config)
    discriminator = factory.build_discriminator(config)
    state_dicts = goldens.network_state_dicts(metadata, arrays)
    variables = {
        "generator": convert_generator(state_dicts["generator"], generator),
        "motion_estimator": convert_motion_estimator(state_dicts["motion_estimator"], estimator),
        "discriminator": convert_discriminator(state_dicts["discriminator"],
                                               discriminator.num_layers),
    }
    seed, size = metadata["seed"], config.image_size
    source = goldens.smooth_frames(seed, 1, size)
    driving = goldens.smooth_frames(seed + 1, 1, size)

    @jax.jit
    def forward(variables, source, driving):
      motion = estimator.apply(variables["motion_estimator"], source, driving, train=False)
      frame = generator.apply(variables["generator"], source, motion.deformation,
                              motion.occlusion, motion.driving_heatmaps, train=False).image
      logits = discriminator.apply(variables["discriminator"], frame, train=False)
      return {
          "source_keypoints": motion.kp_source.value,
          "source_jacobians": motion.kp_source.jacobian,
          "driving_keypoints": motion.kp_driving.value,
          "driving_jacobians": motion.kp_driving.jacobian,
          "deformation": motion.deformation, "occlusion": motion.occlusion,
          "generated_frame": frame, "discriminator_logits": logits,
      }

    return jax.device_get(forward(variables, source, driving))


def test_goldens_record_their_provenance(golden):
  metadata, arrays = golden
  assert metadata["official_commit"] not in ("", "unknown")
  assert set(metadata["networks"]) == {"generator", "motion_estimator", "discriminator"}
  for name in metadata["outputs"]:
    assert arrays[f"float32/{name}"].shape == arrays[f"float64/{name}"].shape
  # The weights are drawn, not stored: the goldens stay small.
  assert GOLDENS.with_suffix(".npz").stat().st_size < 5e6


@pytest.mark.parametrize("output", [
    "source_keypoints", "source_jacobians", "driving_keypoints", "driving_jacobians",
    "deformation", "occlusion", "generated_frame", "discriminator_logits"])
def test_matches_official_golden_output(golden, ours, output):
  _, arrays = golden
  verdict = parity.judge(ours[output], arrays[f"float32/{output}"], arrays[f"float64/{output}"])
  assert verdict.passed, (output, verdict)


def test_golden_outputs_are_not_trivial(golden):
  """A check against constant or saturated outputs would prove little."""
  _, arrays = golden
  keypoints = arrays["float32/driving_keypoints"][0]
  assert np.ptp(keypoints, axis=0).min() > 0.2        # spread over the frame
  occlusion = arrays["float32/occlusion"]
  assert 0.05 < float(occlusion.mean()) < 0.95 and float(np.std(occlusion)) > 0.01
  assert float(np.std(arrays["float32/generated_frame"])) > 0.05
