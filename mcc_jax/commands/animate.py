"""``mcc-jax animate``: animate a source image with the motion of a driving video.

    mcc-jax animate --workdir runs/sample --source photo.jpg --driving talk.mp4 \\
        --output result.mp4 [--relative | --absolute] [--find-best-frame] [--side-by-side]

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
import itertools
import pathlib

from mcc_jax.commands import model_flags


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


def _longest_face_box(detections, frame_shape, what: str):
  """A stable square box around the longest face tube of per-frame detections."""
  from mcc_jax.faces import crop  # pylint: disable=import-outside-toplevel

  # Any detection overlapping the first one extends the box (IoU > 0 rather than the
  # dataset recipe's 0.25): one box for the whole clip, so the head stays inside it.
  best = crop.longest_crop(crop.plan_crops(detections, frame_shape, iou_threshold=0.0))
  if best is None:
    raise _fail(f"{what}: --crop face found no face; use --crop center")
  return best.box


def _source_face_box(image, what: str):
  """The face box of the source image (every detector stage, the CNN included)."""
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  found = faces.find_faces(image)
  if found.detector != "none":
    print(f"source face found by the {found.detector} detector")
  return _longest_face_box([found.boxes], image.shape[:2], what)


def _stream(args, transform, info, desc: str):
  """The driving frames, decoded one at a time and transformed, with a progress bar."""
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  from mcc_jax import media  # pylint: disable=import-outside-toplevel

  frames = media.iterate_frames(args.driving)
  total = info.frame_count
  if args.max_frames is not None:
    frames = itertools.islice(frames, args.max_frames)
    total = args.max_frames if total is None else min(total, args.max_frames)
  count = 0
  with tqdm(total=total, unit="frame", desc=desc) as progress:
    for frame in frames:
      yield transform(frame)
      count += 1
      progress.update(1)
  if count == 0:
    raise media.MediaError(args.driving, "contains no frames (an empty video)")


def _driving_face_box(args, info):
  """One stable square face box over the whole driving video: a detection pass that
  keeps only each frame's boxes. HOG only (on the 640-px copy, then at full resolution
  where that finds nothing): the CNN stage, seconds per frame, would run on every frame
  where the face is turned away."""
  import collections  # pylint: disable=import-outside-toplevel

  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  found_by = collections.Counter()

  def detect(frame):
    found = faces.find_faces(frame, cnn=False)
    found_by[found.detector] += 1
    return found.boxes

  box = _longest_face_box(_stream(args, detect, info, "faces"), info.source_size,
                          str(args.driving))
  total = sum(found_by.values())
  print(f"driving faces found in {total - found_by['none']} of {total} frames (hog "
        f"{found_by['hog']}, hog-full-resolution {found_by['hog-full-resolution']})")
  return box


def run(args: argparse.Namespace) -> int:
  _check_arguments(args)
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
  size = model.image_size
  try:
    image = media.read_image(args.source)
    info = media.probe_video(args.driving)
    if args.crop == "face":
      source = media.crop_and_resize(image, _source_face_box(image, str(args.source)), size)
      box = _driving_face_box(args, info)
    else:
      source, box = media.crop_and_resize(image, None, size), None
  except media.MediaError as error:
    raise _fail(str(error)) from error
  stated = (f"{info.frame_count} frames" if info.frame_count is not None
            else "frames (count not stated in the file)")
  print(f"driving: {args.driving}, {stated} at {float(info.fps):.3f} fps, "
        f"{info.source_size[1]}x{info.source_size[0]} -> {size}x{size} ({args.crop} crop)")
  to_model_size = lambda frame: media.crop_and_resize(frame, box, size)

  animator = inference.Animator(model)
  keypoints, anchor = None, 0
  try:
    if args.best_frame is not None or args.find_best_frame:
      keypoints = animator.keypoints(_stream(args, to_model_size, info, "keypoints"),
                                     batch_size=args.batch_size)
      if args.best_frame is not None:
        if not 0 <= args.best_frame < len(keypoints.value):
          raise _fail(f"--best-frame {args.best_frame}: the driving video has "
                      f"{len(keypoints.value)} frames")
        anchor = args.best_frame
      else:
        source_keypoints = animator.keypoints(source[None], batch_size=1)
        anchor = inference.find_best_frame(source_keypoints.value[0], keypoints.value)
        print(f"best frame: {anchor}")
    batches = animator.animate(source, _stream(args, to_model_size, info, "animate"),
                               relative=args.relative, adapt_scale=args.adapt_scale,
                               anchor_index=anchor, batch_size=args.batch_size,
                               with_flow=args.show_flow, driving_keypoints=keypoints)
    with media.VideoWriter(args.output, info.fps, crf=args.crf) as writer:
      for batch in batches:
        columns = [source, batch.driving] if args.side_by_side else []
        columns.append(batch.frames)
        if args.show_flow:
          columns += list(panels.flow_panels(batch.frames, batch.flow, batch.occlusion))
        writer.write(panels.side_by_side(*columns))
  except media.MediaError as error:
    raise _fail(str(error)) from error
  print(f"wrote {args.output}: {writer.frames_written} frames at {float(info.fps):.3f} fps")
  return 0
