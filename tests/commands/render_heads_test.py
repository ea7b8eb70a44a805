"""``mcc-jax render-heads``: a held-out procedural head as files animate can read."""

import numpy as np
import pytest
from PIL import Image

from mcc_jax import cli
from mcc_jax.data_pipelines.sources import synthetic
from mcc_jax.media import videos


def test_writes_the_datasets_frames(tmp_path, capsys):
  out, first = tmp_path / "p3.mp4", tmp_path / "p3.png"
  assert cli.main(["render-heads", "--person", "3", "--clip", "1", "--frames", "12",
                   "--output", str(out), "--first-frame", str(first)]) == 0
  assert "synthetic-test-0003#01: 12 frames at 64x64" in capsys.readouterr().out
  expected = synthetic.synthetic_video("test", 64, seed=0, person=3, clip=1,
                                       num_frames=12).read_all()
  np.testing.assert_array_equal(np.asarray(Image.open(first)), expected[0])
  clip = videos.read_video(out)
  frames = np.asarray(clip.frames)
  assert frames.shape == (12, 64, 64, 3)
  # H.264 at crf 18 with 4:2:0 chroma is lossy at 64x64 (about 4 levels): close to the rendered frames, far from another person's.
  other = synthetic.synthetic_video("test", 64, seed=0, person=4, clip=1,
                                    num_frames=12).read_all()
  error = np.abs(frames.astype(int) - expected).mean()
  assert error < 8 and np.abs(frames.astype(int) - other).mean() > 3 * error


@pytest.mark.parametrize("arguments, message", [
    (["--person", "-1"], "--person must be at least 0"),
    (["--person", "0", "--frames", "1"], "--frames must be at least 2"),
    (["--person", "0", "--fps", "0"], "--fps must be positive"),
])
def test_bad_arguments_are_named(tmp_path, arguments, message):
  with pytest.raises(SystemExit, match=message):
    cli.main(["render-heads", *arguments, "--output", str(tmp_path / "x.mp4")])
  assert not (tmp_path / "x.mp4").exists()
