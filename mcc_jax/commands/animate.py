"""``mcc-jax animate``: animate a source image with the motion of a driving video.

    mcc-jax animate --workdir runs/sample --source photo.jpg --driving talk.mp4 \\
        --output result.mp4 [--relative | --absolute] [--find-best-frame] [--side-by-side]
    mcc-jax animate --exported vox256_onnx --source photo.jpg --driving talk.mp4 \\
        --output result.mp4

The model is a training run (``--workdir``), a model checkpoint (``--checkpoint``), or
the ONNX graphs of ``mcc-jax export --format onnx`` (``--exported``), run in
onnxruntime without JAX (see docs/export.md).

The source and every driving frame are cropped to a square (the centred one, or with
``--crop face`` a stable box around the detected face) and resized to the model's size;
one jit-compiled function generates the frames batch by batch; the result is an H.264
mp4 at the driving video's frame rate with one frame per driving frame. The output
appears only when complete.

The driving video is streamed: decoding, inference and encoding go batch by batch, and
no pass holds the video, so memory does not grow with its length. Passes over the file,
each with a progress bar: ``faces`` (``--crop face``: detection, for one box over the
clip), ``keypoints`` (``--find-best-frame`` or ``--best-frame``: the anchor must be
known before the first frame is generated), then ``animate``.
"""

from __future__ import annotations

import argparse
import pathlib

from mcc_jax.commands import model_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  model_flags.add_model_arguments(parser).add_argument(
      "--exported", type=pathlib.Path,
      help="A directory written by `mcc-jax export --format onnx`: its graphs run in "
      "onnxruntime (the `export` extra).")
  parser.add_argument("--source", type=pathlib.Path, required=True,
                      help="Source image (JPEG, PNG, WebP, ...; any size).")
  parser.add_argument("--driving", type=pathlib.Path, required=True,
                      help="Driving video (mp4, mov, webm, avi, gif, ...; any size).")
  parser.add_argument("--output", type=pathlib.Path, required=True,
                      help="The .mp4 to write (H.264, the driving video's frame rate).")
  motion = parser.add_mutually_exclusive_group()
  motion.add_argument("--relative", dest="relative", action="store_true", default=True,
                      help="Move the source's keypoints by the driving keypoints' displacement "
                      "from an anchor frame (default; for animating another person).")
  motion.add_argument("--absolute", dest="relative", action="store_false",
                      help="Move the source's keypoints to the driving keypoints (the official "
                      "demo's default; for reconstructing the same person).")
  parser.add_argument("--adapt-scale", action=argparse.BooleanOptionalAction, default=True,
                      help="With relative motion, scale the displacement by the ratio of the "
                      "keypoint hulls' sizes (default: on).")
  anchor = parser.add_mutually_exclusive_group()
  anchor.add_argument("--find-best-frame", action="store_true",
                      help="Anchor relative motion at the driving frame whose keypoints are "
                      "shaped most like the source's (default: the first frame).")
  anchor.add_argument("--best-frame", type=int, default=None,
                      help="Anchor relative motion at this driving frame.")
  parser.add_argument("--crop", choices=("center", "face"), default="center",
                      help="How frames become squares: the centred square (default), or a "
                      "stable square around the face found by the offline detector.")
  parser.add_argument("--side-by-side", action="store_true",
                      help="Write source | driving | result side by side.")
  parser.add_argument("--show-flow", action="store_true",
                      help="Add the final flow (colour wheel) and the occlusion overlay.")
  parser.add_argument("--batch-size", type=int, default=8, help="Frames per compiled call.")
  parser.add_argument("--max-frames", type=int, default=None,
                      help="Use only the first N driving frames.")
  parser.add_argument("--crf", type=int, default=18, help="x264 quality (0 lossless .. 51).")
  parser.epilog = ("--config PATH and --config.<field>=<value> optionally replace the "
                   "configuration saved with the weights (which must then fit it); not "
                   "with --exported, whose configuration is fixed at export.")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax animate: error: {message}")


def _options(args):
  """The command line's options as :class:`~mcc_jax.inference.AnimationOptions`."""
  from mcc_jax.inference import video_animation  # pylint: disable=import-outside-toplevel

  return video_animation.AnimationOptions(
      relative=args.relative, adapt_scale=args.adapt_scale,
      find_best_frame=args.find_best_frame, best_frame=args.best_frame, crop=args.crop,
      side_by_side=args.side_by_side, show_flow=args.show_flow, batch_size=args.batch_size,
      max_frames=args.max_frames, crf=args.crf)


def _check_arguments(args) -> None:
  if args.exported is not None:
    if args.step is not None:
      raise _fail("--step selects a checkpoint of --workdir; an --exported model has one")
    if getattr(args, "config_args", None):
      raise _fail("--config does not apply to --exported: the configuration is fixed at "
                  "export (export again with the configuration wanted)")
  if args.batch_size < 1:
    raise _fail(f"--batch-size must be at least 1, got {args.batch_size}")
  if args.max_frames is not None and args.max_frames < 1:
    raise _fail(f"--max-frames must be at least 1, got {args.max_frames}")
  if args.best_frame is not None and args.best_frame < 0:
    raise _fail(f"--best-frame must be a frame index (>= 0), got {args.best_frame}")
  if not 0 <= args.crf <= 51:
    raise _fail(f"--crf must be in 0..51, got {args.crf}")
  if args.output.suffix.lower() != ".mp4":
    raise _fail(f"--output {args.output}: expected a path ending in .mp4")
  if not args.output.parent.is_dir():
    raise _fail(f"--output {args.output}: cannot be written, the directory "
                f"{args.output.parent} does not exist")
  for flag, path in (("--source", args.source), ("--driving", args.driving)):
    if not path.is_file():
      raise _fail(f"{flag} {path}: no such file")


def _exported_animator(directory: pathlib.Path):
  """The onnxruntime animator of an ONNX export."""
  from mcc_jax import extras  # pylint: disable=import-outside-toplevel

  extras.require("export", "mcc-jax animate --exported")
  from mcc_jax.export.manifest import ExportedModelError  # pylint: disable=import-outside-toplevel
  from mcc_jax.export.onnx_animator import OnnxAnimator  # pylint: disable=import-outside-toplevel

  try:
    return OnnxAnimator(directory)
  except ExportedModelError as error:
    raise _fail(f"--exported {error}") from error


def run(args: argparse.Namespace) -> int:
  from mcc_jax import extras  # pylint: disable=import-outside-toplevel
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.inference import video_animation  # pylint: disable=import-outside-toplevel

  _check_arguments(args)
  if args.crop == "face":
    extras.require("faces", "mcc-jax animate --crop face")

  if args.exported is not None:
    animator = _exported_animator(args.exported)
  else:
    animator = inference.Animator(model_flags.load_model(args, "animate"))
  print(f"model: {animator.description}, {animator.image_size}x{animator.image_size}")
  try:
    video_animation.animate_video(animator, args.source, args.driving, args.output,
                                  _options(args))
  except (video_animation.AnimationError, media.MediaError) as error:
    raise _fail(str(error)) from error
  return 0
