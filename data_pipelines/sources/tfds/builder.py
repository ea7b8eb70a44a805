"""A TFDS builder that converts a video-preprocessing folder tree into TFRecords.

VoxCeleb cannot be downloaded automatically (it needs a licence agreement and the
video-preprocessing tool), so the builder takes the prepared folder tree as its manual
download directory. It writes one record per frame, holding the frame encoded as PNG
(or JPEG) at the chosen size plus its video name, person, frame index and the video's
frame count. Frames of a video are written consecutively, videos in name order.

One record per frame keeps training reads small: a pair costs two records, read at
their byte offsets (see `record_index`), whatever the length of the video. After
writing, `build_tfds_dataset` stores that offset index next to the records.

Command line: ``mcc-jax build-tfds --root DIR --output DATA_DIR --image-size 256``.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from mcc_jax.data_pipelines.bad_files import BadFileLog, BadVideoError
from mcc_jax.data_pipelines.sources.folder import open_split
from mcc_jax.data_pipelines.sources.tfds.record_index import RecordIndex, index_path

_LOGGER = logging.getLogger(__name__)

BUILDER_NAME = "talking_head_videos"
FRAME_FORMATS = ("png", "jpeg")
SPLITS = ("train", "test")


@dataclasses.dataclass(eq=False)
class TalkingHeadVideosConfig(tfds.core.BuilderConfig):
  """Frame size and encoding of a build.

  Attributes:
    image_size: side of the stored frames; frames of other sizes are resized.
    frame_format: ``'png'`` (lossless) or ``'jpeg'`` (quality 95, about 4x smaller).
    skip_bad_files: leave out unreadable videos (logged) instead of failing the build.
  """
  image_size: int = 256
  frame_format: str = "png"
  skip_bad_files: bool = False


def builder_config(image_size: int, frame_format: str = "png",
                   skip_bad_files: bool = False) -> TalkingHeadVideosConfig:
  """Returns the configuration named ``<image_size>px``.

  Args:
    image_size: side of the stored frames (positive).
    frame_format: one of `FRAME_FORMATS`.
    skip_bad_files: leave out unreadable videos instead of failing.

  Returns:
    A `TalkingHeadVideosConfig`.

  Raises:
    ValueError: for a non-positive size or an unknown format.
  """
  if not isinstance(image_size, int) or image_size <= 0:
    raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
  if frame_format not in FRAME_FORMATS:
    raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got {frame_format!r}")
  return TalkingHeadVideosConfig(
      name=f"{image_size}px", description=f"{image_size}x{image_size} frames",
      image_size=image_size, frame_format=frame_format, skip_bad_files=skip_bad_files)


class TalkingHeadVideos(tfds.core.GeneratorBasedBuilder):
  """Talking-head videos in the video-preprocessing layout, one record per frame."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "One record per frame; frames of a video are consecutive."}
  # Every build passes its own `builder_config(...)`: size, format and skipping are
  # free choices, so there are no predefined configurations to clash with.
  BUILDER_CONFIGS = []
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Prepare the videos with AliaksandrSiarohin/video-preprocessing (for VoxCeleb:
  `python load_videos.py --metadata vox-metadata.csv --format .mp4 --out_folder
  vox`), then pass the output folder, which holds `train/` and `test/`, as the manual
  directory (`mcc-jax build-tfds --root vox ...`). Each video may be a folder of
  frames, an .mp4, a .gif or a horizontal PNG strip.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Talking-head videos (e.g. VoxCeleb prepared by video-preprocessing)"
                     ", one example per frame."),
        features=tfds.features.FeaturesDict({
            "frame": tfds.features.Image(shape=(size, size, 3),
                                         encoding_format=self.builder_config.frame_format),
            "video_name": tfds.features.Text(),
            "person": tfds.features.Text(),
            "frame_index": tfds.features.Scalar(np.int32),
            "num_frames": tfds.features.Scalar(np.int32),
        }),
        homepage="https://github.com/AliaksandrSiarohin/video-preprocessing",
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    present = [s for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    if not present:
      raise FileNotFoundError(f"the manual directory {root!r} has none of the split "
                              f"folders {list(SPLITS)}")
    return {split: self._generate_examples(root, split) for split in present}

  def _generate_examples(self, root: str, split: str):
    config = self.builder_config
    log = BadFileLog(f"{split} split of {root}")
    videos = open_split(root, split, config.image_size,
                        skip_bad_files=config.skip_bad_files, bad_file_log=log)
    for video_number, video in enumerate(videos):
      try:
        frames = video.read_all()
      except BadVideoError as error:
        if not config.skip_bad_files:
          raise
        log.record(error)
        continue
      for frame_index, frame in enumerate(frames):
        yield f"{video_number:08d}/{frame_index:06d}", {
            "frame": frame, "video_name": video.name, "person": video.person,
            "frame_index": frame_index, "num_frames": len(frames)}
    if log.count:
      _LOGGER.warning("Left out %d bad video(s) of %s", log.count,
                      os.path.join(root, split))


def build_tfds_dataset(root: str, data_dir: str, image_size: int, *,
                       frame_format: str = "png", skip_bad_files: bool = False) -> str:
  """Converts a folder tree into TFRecords and indexes them.

  Args:
    root: folder with ``train/`` and/or ``test/`` in the video-preprocessing layout.
    data_dir: TFDS data directory to write to (the ``datasets.root`` of ``'tfds'``).
    image_size: side of the stored frames.
    frame_format: ``'png'`` or ``'jpeg'``.
    skip_bad_files: leave out unreadable videos instead of failing.

  Returns:
    The directory holding the records (``data_dir/talking_head_videos/<N>px/<version>``).

  Raises:
    FileNotFoundError: if `root` or all of its split folders are missing.
    BadVideoError: for an unreadable video unless `skip_bad_files`.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"dataset root {root!r} does not exist or is not a folder")
  builder = TalkingHeadVideos(
      config=builder_config(image_size, frame_format, skip_bad_files), data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=root))
  for split in builder.info.splits:
    RecordIndex.scan(builder, split).save(index_path(builder.data_dir, split))
  return os.fspath(builder.data_dir)
