"""The evaluation loops: reconstruction and cross-identity animation of the test videos.

**Reconstruction** (the paper's protocol, and the official evaluation's): for each test
video, frame 0 is the source and every frame (frame 0 included) is reconstructed from
it with absolute motion (the source is moved to the driving keypoints, no relative
motion), then compared with the real frame: PSNR, L1, LPIPS, AKD, AED, identity
similarity, FID.

**Cross-identity**: the first frame of one video is animated by another person's
video with relative motion and adapted scale (the official demo's setting). Each
test video drives the first frame of the nearest preceding video (cyclically, in
name order) whose person differs (the part of the name before ``#``); if every video
shows one person, the preceding video. Identity is compared with the source (identity
similarity, AED) and landmarks with the driving frames (AKD). A real video has no
ground truth for this; the ``synthetic`` dataset does: each frame of what the source
person would look like in the driving motion is rendered
(``data_pipelines/sources/synthetic/reenactment.py``, relative motion), and PSNR, L1
and LPIPS are scored against it. Finding the sources reads the split twice.

Metrics are averaged over all frames of all videos (the official averaging), not per
video. Unreadable videos are skipped and counted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import numpy as np

from mcc_jax.evaluation import eval_videos
from mcc_jax.evaluation import landmark_metrics
from mcc_jax.evaluation import metric_catalog
from mcc_jax.evaluation import pixel_metrics
from mcc_jax.evaluation.frechet import features_distance


@dataclasses.dataclass(frozen=True)
class EvaluationOptions:
  """How to evaluate.

  Attributes:
    mode: ``'reconstruction'`` or ``'cross_identity'``.
    metrics: metric names, or None for the mode's defaults (FID included when
      ``fid_weights`` is given).
    max_videos: evaluate only the first videos by name (None: all).
    max_frames: use only the first frames of each video (None: all).
    batch_size: frames per compiled call of the model and of the metric networks.
    face_box: ``'detect'`` or ``'frame'`` (see :mod:`landmark_metrics`).
    face_workers: worker processes measuring faces (0: in this process).
    fid_reference: ``'driving'`` (the real frames) or ``'source'`` (the official).
    fid_weights: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, or None.
  """

  mode: str = "reconstruction"
  metrics: tuple[str, ...] | None = None
  max_videos: int | None = None
  max_frames: int | None = None
  batch_size: int = 8
  face_box: str = "detect"
  face_workers: int = 0
  fid_reference: str = "driving"
  fid_weights: str | None = None


@dataclasses.dataclass
class MetricResult:
  """One metric over the whole split.

  Attributes:
    name: the metric's name.
    value: the mean (NaN when no frame could be scored).
    definition: what was measured (see :func:`metric_catalog.definition`).
    frames: frames that entered the mean.
    missed_fraction: for face metrics, the fraction of frames skipped because a face
      was not found; None otherwise.
  """

  name: str
  value: float
  definition: str
  frames: int
  missed_fraction: float | None = None

  def to_json(self) -> dict[str, Any]:
    """A JSON-ready dict (NaN becomes None)."""
    out = {"value": None if math.isnan(self.value) else self.value,
           "definition": self.definition, "frames": self.frames}
    info = metric_catalog.METRICS.get(self.name)
    if info is not None:
      out["higher_is_better"] = info.higher_is_better
    if self.missed_fraction is not None:
      out["missed_fraction"] = self.missed_fraction
    return out


@dataclasses.dataclass
class EvaluationResult:
  """Everything an evaluation produced.

  Attributes:
    mode: the mode.
    metrics: metric name -> :class:`MetricResult`, in catalogue order (``l1`` comes
      with ``l1_255``).
    per_video: one dict per evaluated video: ``video``, ``frames``, ``total_frames``,
      (``source_video`` in cross-identity mode), the video's mean of each per-frame
      metric and, for AKD, ``akd_missed_fraction``.
    frames: frames evaluated.
    skipped_videos: ``(path, reason)`` of each unreadable video.
    settings: the options and the motion used, for the record.
  """

  mode: str
  metrics: dict[str, MetricResult]
  per_video: list[dict[str, Any]]
  frames: int
  skipped_videos: list[tuple[str, str]]
  settings: dict[str, Any]


def cross_identity_sources(names: list[str]) -> dict[int, int]:
  """For each video, the video whose first frame it drives in cross-identity mode.

  Args:
    names: video names in order.

  Returns:
    driving position -> source position: the nearest preceding position (cyclically)
    whose person differs; the preceding one if all are one person (the video itself
    when there is one).
  """
  from mcc_jax.data_pipelines.pair_sampling import person_id  # pylint: disable=import-outside-toplevel

  persons = [person_id(name) for name in names]
  count = len(names)
  sources = {}
  for j in range(count):
    candidates = [(j - step) % count for step in range(1, count)]
    other = [i for i in candidates if persons[i] != persons[j]]
    sources[j] = other[0] if other else (candidates[0] if candidates else j)
  return sources


class _Scorers:
  """The metric networks and the per-frame scores collected so far."""

  def __init__(self, metrics: tuple[str, ...], options: EvaluationOptions):
    self.metrics = metrics
    self.options = options
    self.lpips = None
    if "lpips" in metrics:
      from mcc_jax.evaluation.lpips_metric import LPIPS  # pylint: disable=import-outside-toplevel
      self.lpips = LPIPS(batch_size=options.batch_size)
    self.inception = None
    if "fid" in metrics:
      from mcc_jax.evaluation import fid  # pylint: disable=import-outside-toplevel
      if options.fid_weights is None:
        raise fid.FIDWeightsError(f"FID needs pytorch-fid's Inception weights: pass "
                                  f"{fid.WEIGHTS_FLAG} PATH to {fid.WEIGHTS_FILE}")
      self.inception = fid.InceptionFeatures(fid.load_fid_weights(options.fid_weights),
                                             batch_size=options.batch_size)
    self.faces = None
    if any(m in metrics for m in metric_catalog.FACE_METRICS):
      self.faces = landmark_metrics.FaceMeter(face_box=options.face_box,
                                              workers=options.face_workers)
    self.per_frame: dict[str, list[np.ndarray]] = {}
    self.fid_generated: list[np.ndarray] = []
    self.fid_reference: list[np.ndarray] = []
    self._source_faces: dict[int, landmark_metrics.Face] = {}
    self._source_features: dict[int, np.ndarray] = {}

  def close(self) -> None:
    if self.faces is not None:
      self.faces.close()

  def _source_face(self, key: int, source: np.ndarray) -> landmark_metrics.Face:
    if key not in self._source_faces:
      self._source_faces[key] = self.faces(source[None], landmarks=False)[0]
    return self._source_faces[key]

  def score(self, generated: np.ndarray, driving: np.ndarray, source: np.ndarray,
            source_key: int, target: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Scores one video's frames; returns metric -> per-frame values (NaN: missed).

    ``target`` is what PSNR, L1 and LPIPS compare with (default: the driving frames).
    """
    metrics, mode = self.metrics, self.options.mode
    target = driving if target is None else target
    scores = {}
    if "psnr" in metrics:
      scores["psnr"] = pixel_metrics.psnr(generated, target)
    if "l1" in metrics:
      l1_255 = pixel_metrics.l1_distance(generated, target)
      scores["l1"], scores["l1_255"] = l1_255 / 255.0, l1_255
    if self.lpips is not None:
      scores["lpips"] = self.lpips(generated, target)
    if self.faces is not None:
      identity = "aed" in metrics or "csim" in metrics
      identity_from_driving = identity and mode == "reconstruction"
      generated_faces = self.faces(generated, landmarks="akd" in metrics, embedding=identity)
      driving_faces = None
      if "akd" in metrics or identity_from_driving:
        driving_faces = self.faces(driving, landmarks="akd" in metrics,
                                   embedding=identity_from_driving)
      if "akd" in metrics:
        scores["akd"] = landmark_metrics.keypoint_distances(driving_faces, generated_faces)
      if identity:
        reference = (driving_faces if identity_from_driving else
                     [self._source_face(source_key, source)] * len(generated))
        if "aed" in metrics:
          scores["aed"] = landmark_metrics.embedding_distances(reference, generated_faces)
        if "csim" in metrics:
          scores["csim"] = landmark_metrics.embedding_similarities(reference, generated_faces)
    if self.inception is not None:
      # One pass over generated and reference frames together: fewer padded batches.
      count = len(generated)
      if self.options.fid_reference == "source":
        known = source_key in self._source_features
        frames = generated if known else np.concatenate([generated, source[None]])
        features = self.inception(frames)
        if not known:
          self._source_features[source_key] = features[count]
        reference = np.repeat(self._source_features[source_key][None], count, axis=0)
      else:
        features = self.inception(np.concatenate([generated, driving]))
        reference = features[count:]
      self.fid_generated.append(features[:count])
      self.fid_reference.append(reference)
    for name, values in scores.items():
      self.per_frame.setdefault(name, []).append(values)
    return scores

  def results(self, image_size: int) -> dict[str, MetricResult]:
    """The metrics over every frame scored so far."""
    options = self.options
    define = lambda name: metric_catalog.definition(
        name, mode=options.mode, image_size=image_size, face_box=options.face_box,
        fid_reference=options.fid_reference)
    out = {}
    for name in self.metrics:
      if name == "fid":
        generated = np.concatenate(self.fid_generated) if self.fid_generated else np.zeros((0,))
        reference = np.concatenate(self.fid_reference) if self.fid_reference else np.zeros((0,))
        value = float("nan")
        if len(generated) >= 2 and len(reference) >= 2:
          value = features_distance(generated, reference)
        out[name] = MetricResult(name, value, define(name), frames=len(generated))
        continue
      names = [name, "l1_255"] if name == "l1" else [name]
      for key in names:
        values = np.concatenate(self.per_frame.get(key, [np.zeros((0,))]))
        valid = ~np.isnan(values)
        value = float(np.mean(values[valid])) if valid.any() else float("nan")
        missed = None
        if name in metric_catalog.FACE_METRICS:
          missed = float(1.0 - valid.mean()) if len(values) else 0.0
        out[key] = MetricResult(key, value, define(key), frames=int(valid.sum()),
                                missed_fraction=missed)
    return out


def _video_record(video: eval_videos.EvalVideo, scores: dict[str, np.ndarray],
                  source_name: str | None) -> dict[str, Any]:
  record: dict[str, Any] = {"video": video.name}
  if source_name is not None:
    record["source_video"] = source_name
  record.update(frames=len(video.frames), total_frames=video.total_frames)
  for name, values in scores.items():
    valid = ~np.isnan(values)
    record[name] = float(np.mean(values[valid])) if valid.any() else None
    if name == "akd":
      record["akd_missed_fraction"] = float(1.0 - valid.mean())
  return record


def _progress(iterable: Iterable, total: int, description: str, enabled: bool) -> Iterable:
  if not enabled:
    return iterable
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(iterable, total=total, desc=description, unit="video")


def evaluate(model, datasets, options: EvaluationOptions, *,
             progress: bool = True) -> EvaluationResult:
  """Evaluates a model on the test split of a dataset.

  Args:
    model: a :class:`mcc_jax.inference.LoadedModel`.
    datasets: the ``datasets`` configuration block whose ``eval_split`` is evaluated.
    options: :class:`EvaluationOptions`.
    progress: show tqdm progress bars over the videos.

  Returns:
    :class:`EvaluationResult`.

  Raises:
    metric_catalog.UnknownMetricError: a metric that does not exist or apply.
    mcc_jax.evaluation.fid.FIDWeightsError: FID without usable weights.
    eval_videos.EmptyTestSplitError: no test video can be read.
    ValueError: invalid options, or frames of another size than the model's.
  """
  from mcc_jax.data_pipelines import BadFileLog  # pylint: disable=import-outside-toplevel
  from mcc_jax.data_pipelines import sources as dataset_sources  # pylint: disable=import-outside-toplevel
  from mcc_jax.inference import Animator  # pylint: disable=import-outside-toplevel

  relative = options.mode == "cross_identity"
  ground_truth = relative and dataset_sources.get(datasets.name).renders_reenactment
  metrics = metric_catalog.resolve_metrics(options.mode, options.metrics,
                                           fid_available=options.fid_weights is not None,
                                           rendered_ground_truth=ground_truth)
  if options.fid_reference not in metric_catalog.FID_REFERENCES:
    raise ValueError(f"fid_reference must be one of {list(metric_catalog.FID_REFERENCES)}, "
                     f"got {options.fid_reference!r}")
  if options.face_box not in landmark_metrics.FACE_BOX_CHOICES:
    raise ValueError(f"face_box must be one of {list(landmark_metrics.FACE_BOX_CHOICES)}, "
                     f"got {options.face_box!r}")
  for field in ("max_videos", "max_frames"):
    value = getattr(options, field)
    if value is not None and value < 1:
      raise ValueError(f"{field} must be at least 1, got {value}")
  datasets = eval_videos.evaluation_datasets_config(datasets, max_videos=options.max_videos)
  if int(datasets.image_size) != model.image_size:
    raise ValueError(f"datasets.image_size is {datasets.image_size} but the model works at "
                     f"{model.image_size}x{model.image_size}; set "
                     f"--config.datasets.image_size={model.image_size}")
  names = eval_videos.video_names(datasets)
  renderer = (dataset_sources.get(datasets.name)(datasets, datasets.eval_split)
              if ground_truth else None)
  scorers = _Scorers(metrics, options)
  animator = Animator(model)
  bad_files = BadFileLog(f"{datasets.eval_split} split of the {datasets.name!r} dataset")
  per_video = []
  frames = 0
  try:
    sources: dict[int, np.ndarray] = {}
    source_of: dict[int, int] = {}
    if relative:
      videos = eval_videos.read_test_videos(datasets, max_frames=1, bad_file_log=bad_files)
      for video in _progress(videos, len(names), "first frames", progress):
        sources[video.index] = video.frames[0]
      readable = sorted(sources)
      pairing = cross_identity_sources([names[i] for i in readable])
      source_of = {readable[j]: readable[i] for j, i in pairing.items()}
    videos = eval_videos.read_test_videos(datasets, max_frames=options.max_frames,
                                          bad_file_log=bad_files)
    for video in _progress(videos, len(names), options.mode, progress):
      if relative:
        if video.index not in source_of:
          continue  # Read in the second pass only; no source was chosen for it.
        source_index = source_of[video.index]
        source = sources[source_index]
      else:
        source_index, source = video.index, video.frames[0]
      generated = np.concatenate([
          batch.frames for batch in animator.animate(
              source, video.frames, relative=relative, adapt_scale=relative,
              batch_size=options.batch_size)])
      target = None
      if ground_truth:
        target = renderer.reenactment_target(names[source_index], video.name,
                                             range(len(video.frames)))
      scores = scorers.score(generated, video.frames, source, source_index, target)
      per_video.append(_video_record(video, scores,
                                     names[source_index] if relative else None))
      frames += len(video.frames)
  finally:
    scorers.close()
  if not per_video:
    raise eval_videos.EmptyTestSplitError(
        f"every video of the {datasets.eval_split!r} split of the {datasets.name!r} dataset "
        f"was unreadable ({bad_files.count} skipped)")
  motion = ("absolute (the source moved to the driving keypoints); frame 0 of each video is "
            "the source of all its frames" if not relative else
            "relative with adapted scale, anchored at the first driving frame; the first "
            "frame of the nearest preceding video of another person is the source")
  reference = ("rendered: the source video's person in the driving video's motion"
               if ground_truth else None if relative else "the driving frames")
  settings = {"metrics": list(metrics), "motion": motion, "ground_truth": reference,
              "max_videos": options.max_videos,
              "max_frames": options.max_frames, "face_box": options.face_box,
              "fid_reference": options.fid_reference if "fid" in metrics else None,
              "dataset": {"name": datasets.name, "root": datasets.root,
                          "split": datasets.eval_split, "image_size": int(datasets.image_size),
                          "videos_in_split": len(names)}}
  return EvaluationResult(mode=options.mode, metrics=scorers.results(model.image_size),
                          per_video=per_video, frames=frames,
                          skipped_videos=[(e.path, e.reason) for e in bad_files.entries],
                          settings=settings)
