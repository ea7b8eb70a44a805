"""The pieces of the evaluation loops: metric choice, cross-identity pairs, test videos."""

import numpy as np
import pytest

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.evaluation import eval_videos
from mcc_jax.evaluation import metric_catalog
from mcc_jax.evaluation import protocol


def test_default_metrics_per_mode():
  resolve = metric_catalog.resolve_metrics
  assert resolve("reconstruction", None, fid_available=False) == (
      "psnr", "l1", "lpips", "akd", "aed")
  assert resolve("reconstruction", None, fid_available=True)[-1] == "fid"
  assert resolve("cross_identity", None, fid_available=False) == ("akd", "aed", "csim")
  assert resolve("reconstruction", ["aed", "psnr"], fid_available=False) == ("psnr", "aed")
  # With a rendered ground truth (the synthetic dataset), cross-identity mode scores
  # the pixel metrics too; reconstruction is unchanged by the flag.
  assert resolve("cross_identity", None, fid_available=False, rendered_ground_truth=True) == (
      "psnr", "l1", "lpips", "akd", "aed", "csim")
  assert resolve("reconstruction", None, fid_available=False, rendered_ground_truth=True) == (
      "psnr", "l1", "lpips", "akd", "aed")
  assert resolve("cross_identity", ["lpips"], fid_available=False,
                 rendered_ground_truth=True) == ("lpips",)


def test_metric_errors():
  with pytest.raises(metric_catalog.UnknownMetricError, match="unknown metric 'ssim'"):
    metric_catalog.resolve_metrics("reconstruction", ["ssim"], fid_available=False)
  with pytest.raises(metric_catalog.UnknownMetricError, match="does not apply to mode"):
    metric_catalog.resolve_metrics("cross_identity", ["psnr"], fid_available=False)


def test_definitions_name_the_models_and_the_reference():
  akd = metric_catalog.definition("akd", mode="reconstruction", image_size=64)
  assert "dlib" in akd and "not comparable with the paper" in akd and "64x64" in akd
  assert "source image" in metric_catalog.definition("aed", mode="cross_identity",
                                                     image_size=64)
  for name in ("psnr", "l1", "lpips"):
    assert "real driving frame" in metric_catalog.definition(name, mode="reconstruction",
                                                             image_size=64)
    assert "rendered ground truth" in metric_catalog.definition(name, mode="cross_identity",
                                                                image_size=64)
  official = metric_catalog.definition("fid", mode="reconstruction", image_size=64,
                                       fid_reference="source")
  assert "as the official evaluation does" in official


def test_cross_identity_sources_pick_another_person():
  names = ["a#1", "a#2", "b#1", "c#1", "c#2"]
  sources = protocol.cross_identity_sources(names)
  # Nearest preceding video (cyclically) of another person.
  assert sources == {0: 4, 1: 4, 2: 1, 3: 2, 4: 2}
  assert protocol.cross_identity_sources(["a#1", "a#2"]) == {0: 1, 1: 0}
  assert protocol.cross_identity_sources(["a#1"]) == {0: 0}


def test_test_videos_come_back_as_the_decoded_frames():
  datasets = eval_videos.evaluation_datasets_config(
      data_pipelines.datasets_config(name="sample", image_size=64))
  assert datasets.skip_bad_files
  videos = list(eval_videos.read_test_videos(datasets, max_frames=5))
  expected = sample_clip.sample_videos("test", 64)[0].read_all()
  assert [v.name for v in videos] == ["carphone#096"]
  assert videos[0].total_frames == len(expected)
  np.testing.assert_array_equal(videos[0].frames, expected[:5])


def test_unreadable_videos_are_skipped_and_counted(tmp_path):
  import imageio.v3 as iio  # pylint: disable=import-outside-toplevel

  good = tmp_path / "test" / "id1#good"
  good.mkdir(parents=True)
  frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
  for i, frame in enumerate(frames):
    iio.imwrite(good / f"{i:04d}.png", frame)
  (tmp_path / "test" / "id2#broken.mp4").write_bytes(b"not a video")
  datasets = eval_videos.evaluation_datasets_config(
      data_pipelines.datasets_config(name="folder", root=str(tmp_path), image_size=64))
  log = data_pipelines.BadFileLog("test split")
  videos = list(eval_videos.read_test_videos(datasets, bad_file_log=log))
  assert [v.name for v in videos] == ["id1#good"]
  np.testing.assert_array_equal(videos[0].frames, frames)
  assert log.count == 1 and log.entries[0].path.endswith("id2#broken.mp4")
