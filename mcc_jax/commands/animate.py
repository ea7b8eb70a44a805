"""``mcc-jax animate``: animate a source image with the motion of a driving video.

    mcc-jax animate --workdir runs/sample --source photo.jpg --driving talk.mp4 \\
        --output result.mp4 [--relative | --absolute] [--find-best-frame] [--side-by-side]

The source and every driving frame are cropped to a square (the centred one, or with
``--crop face`` a stable box around the detected face) and resized to the model's size;
one jit-compiled function generates the frames batch by batch; the result is an H.264
mp4 at the driving video's frame rate with one frame per driving frame. The output
appears only when complete.
"""

from __future__ import annotations

import argparse
import pathlib

from mcc_jax.commands import model_flags


# Face detection runs on copies at most this large (the video-preprocessing recipe's size).
_DETECTION_SIDE = 640


def add_arguments(parser: argparse.ArgumentParser) -> None:
  model_flags.add_model_arguments(parser)
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
                   "configuration saved with the weights (which must then fit it).")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax animate: error: {message}")


def _check_arguments(args) -> None:
  if args.batch_size < 1:
    raise _fail(f"--batch-size must be at least 1, got {args.batch_size}")
  if args.max_frames is not None and args.max_frames < 1:
    raise _fail(f"--max-frames must be at least 1, got {args.max_frames}")
  if args.output.suffix.lower() != ".mp4":
    raise _fail(f"--output {args.output}: expected a path ending in .mp4")
  if not args.output.parent.is_dir():
    raise _fail(f"--output {args.output}: cannot be written, the directory "
                f"{args.output.parent} does not exist")
  for flag, path in (("--source", args.source), ("--driving", args.driving)):
    if not path.is_file():
      raise _fail(f"{flag} {path}: no such file")


def _downscaled(frame):
  """A copy at most _DETECTION_SIDE pixels on its longer side, and its scale factor."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel

  height, width = frame.shape[:2]
  factor = max(height, width) / _DETECTION_SIDE
  if factor <= 1:
    return frame
  size = (max(1, round(width / factor)), max(1, round(height / factor)))
  return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def _face_box(frames, what: str):
  """A stable square face box over ``frames`` (at their own resolution)."""
  from mcc_jax.faces import crop  # pylint: disable=import-outside-toplevel

  # Any detection overlapping the first one extends the box (IoU > 0 rather than the
  # dataset recipe's 0.25): one box for the whole clip, so the head stays inside it.
  box = crop.face_crop_box(frames, iou_threshold=0.0)
  if box is None:
    raise _fail(f"{what}: --crop face found no face; use --crop center")
  return box


def _read_inputs(args, size: int):
  """(source uint8 (S,S,3), driving VideoClip at (S,S)) per --crop."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  from mcc_jax import media  # pylint: disable=import-outside-toplevel

  image = media.read_image(args.source)
  if args.crop == "center":
    source = media.crop_and_resize(image, None, size)
    clip = media.read_video(args.driving, lambda f: media.crop_and_resize(f, None, size),
                            max_frames=args.max_frames)
    return source, clip
  source = media.crop_and_resize(image, _face_box(image[None], str(args.source)), size)
  # Detection on small copies; the box is then scaled back to the full frames.
  small = media.read_video(args.driving, _downscaled, max_frames=args.max_frames)
  box = np.asarray(_face_box(small.frames, str(args.driving)), np.float64)
  scale = small.source_size[0] / small.frames.shape[1]
  box = tuple(int(round(v)) for v in box * scale)
  clip = media.read_video(args.driving, lambda f: media.crop_and_resize(f, box, size),
                          max_frames=args.max_frames)
  return source, clip


def run(args: argparse.Namespace) -> int:
  _check_arguments(args)
  import numpy as np  # pylint: disable=import-outside-toplevel
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel
  from mcc_jax import extras  # pylint: disable=import-outside-toplevel
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.visualization import panels  # pylint: disable=import-outside-toplevel

  if args.crop == "face":
    extras.require("faces", "mcc-jax animate --crop face")

  config = (config_cli.parse_config(args.config_args, prog="mcc-jax animate")
            if args.config_args else None)
  try:
    model = inference.load_model(workdir=args.workdir, checkpoint=args.checkpoint,
                                 step=args.step, use_ema=args.ema, config=config)
  except (FileNotFoundError, inference.CheckpointMismatchError) as error:
    raise _fail(str(error)) from error
  print(f"model: {model.description}, {model.image_size}x{model.image_size}")
  try:
    source, clip = _read_inputs(args, model.image_size)
  except media.MediaError as error:
    raise _fail(str(error)) from error
  driving = clip.frames
  print(f"driving: {args.driving}, {len(driving)} frames at {float(clip.fps):.3f} fps, "
        f"{clip.source_size[1]}x{clip.source_size[0]} -> {model.image_size}x{model.image_size} "
        f"({args.crop} crop)")

  animator = inference.Animator(model)
  keypoints = animator.keypoints(driving, batch_size=args.batch_size)
  anchor = 0
  if args.best_frame is not None:
    if not 0 <= args.best_frame < len(driving):
      raise _fail(f"--best-frame {args.best_frame}: the driving video has {len(driving)} "
                  f"frames")
    anchor = args.best_frame
  elif args.find_best_frame:
    source_keypoints = animator.keypoints(source[None], batch_size=1)
    anchor = inference.find_best_frame(source_keypoints.value[0], keypoints.value)
    print(f"best frame: {anchor}")

  batches = animator.animate(source, driving, relative=args.relative,
                             adapt_scale=args.adapt_scale, anchor_index=anchor,
                             batch_size=args.batch_size, with_flow=args.show_flow,
                             driving_keypoints=keypoints)
  try:
    with media.VideoWriter(args.output, clip.fps, crf=args.crf) as writer, \
        tqdm(total=len(driving), unit="frame", desc="animate") as progress:
      for batch in batches:
        columns = []
        if args.side_by_side:
          columns += [source, driving[batch.start:batch.start + len(batch.frames)]]
        columns.append(batch.frames)
        if args.show_flow:
          columns += list(panels.flow_panels(batch.frames, batch.flow, batch.occlusion))
        writer.write(panels.side_by_side(*columns))
        progress.update(len(batch.frames))
  except media.MediaError as error:
    raise _fail(str(error)) from error
  print(f"wrote {args.output}: {writer.frames_written} frames at {float(clip.fps):.3f} fps")
  return 0
