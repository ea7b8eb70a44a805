"""``mcc-jax crop-video``: find the face in a video and crop it to a stable square.

    mcc-jax crop-video --input talk.mp4 --output face.mp4 [--image-size 256]
    mcc-jax crop-video --input talk.mp4 --print-commands

The video-preprocessing recipe of the talking-head datasets: faces are detected in every
frame (offline, with dlib: HOG on a copy of at most 640 px, then at full resolution,
then dlib's CNN detector where HOG finds nothing; see :func:`mcc_jax.faces.find_faces`),
joined into tubes (one face followed through consecutive frames), and each tube of at
least ``--min-frames`` frames gets one square box: the union of its detections enlarged
by ``--increase`` on every side. ``--output`` writes
the longest tube's frames cropped to that box and resized to ``--image-size`` (H.264,
the input's frame rate; the file appears only when complete); ``--print-commands``
prints one ffmpeg command per tube instead, as the recipe does. The output says in how
many frames a face was found and how many of those each detector found.
"""

from __future__ import annotations

import argparse
import collections
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  from mcc_jax.faces import crop  # pylint: disable=import-outside-toplevel

  parser.add_argument("--input", type=pathlib.Path, required=True,
                      help="The video (mp4, mov, webm, avi, gif, ...; any size).")
  action = parser.add_mutually_exclusive_group(required=True)
  action.add_argument("--output", type=pathlib.Path,
                      help="The .mp4 to write: the longest face tube, cropped and resized.")
  action.add_argument("--print-commands", action="store_true",
                      help="Print one ffmpeg command per face tube instead of writing.")
  parser.add_argument("--image-size", type=int, default=256,
                      help="Side of the output frames (the model's size; default 256).")
  parser.add_argument("--increase", type=float, default=0.1,
                      help="Margin around the face on each side, as a fraction of its size "
                      "(default 0.1).")
  parser.add_argument("--min-frames", type=int, default=30,
                      help="Ignore face tubes shorter than this many frames (default 30).")
  parser.add_argument("--iou", type=float, default=0.25,
                      help="Overlap with a tube's first box above which a detection joins "
                      "the tube (default 0.25).")
  parser.add_argument("--max-gap", type=int, default=crop.DEFAULT_MAX_GAP,
                      help="Frames without a detection that a tube survives (default "
                      "%(default)s; 0 ends a tube at the first missed frame, as the recipe "
                      "does).")
  parser.add_argument("--upsample", type=int, default=None,
                      help="HOG detector upsampling on the full-size frames; each step "
                      "finds faces half as large, four times slower (default: automatic, "
                      "frames brought to 320-640 pixels, then full resolution and dlib's "
                      "CNN detector where HOG finds nothing).")
  parser.add_argument("--crf", type=int, default=18, help="x264 quality (0 lossless .. 51).")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax crop-video: error: {message}")


def _check_arguments(args) -> None:
  checks = [
      (args.image_size >= 1, f"--image-size must be positive, got {args.image_size}"),
      (args.increase >= 0, f"--increase must be >= 0, got {args.increase}"),
      (args.min_frames >= 1, f"--min-frames must be at least 1, got {args.min_frames}"),
      (0 <= args.iou < 1, f"--iou must be in [0, 1), got {args.iou}"),
      (args.max_gap >= 0, f"--max-gap must be >= 0, got {args.max_gap}"),
      (args.upsample is None or args.upsample >= 0,
       f"--upsample must be >= 0, got {args.upsample}"),
  ]
  for ok, message in checks:
    if not ok:
      raise _fail(message)
  if not args.input.is_file():
    what = "is a directory" if args.input.is_dir() else "no such file"
    raise _fail(f"--input {args.input}: {what} (expected a video)")
  if args.output is not None:
    if args.output.suffix.lower() != ".mp4":
      raise _fail(f"--output {args.output}: expected a path ending in .mp4")
    if not args.output.parent.is_dir():
      raise _fail(f"--output {args.output}: cannot be written, the directory "
                  f"{args.output.parent} does not exist")
    if args.output.exists() and args.output.resolve() == args.input.resolve():
      raise _fail(f"--output {args.output}: is the input video")


def _frame_count(path: pathlib.Path) -> int | None:
  """The number of frames the container states, for the progress bar (None: unknown)."""
  import av  # pylint: disable=import-outside-toplevel

  try:
    with av.open(str(path)) as container:
      frames = container.streams.video[0].frames if container.streams.video else 0
  except (av.FFmpegError, OSError):
    return None
  return frames or None


def _detect(args):
  """Detects faces in every frame and joins them into tubes.

  Returns:
    (tubes, number of frames, frame shape (H, W), frames with a face per detector: a
    Counter of :func:`mcc_jax.faces.find_faces`'s detector names, without 'none').
  """
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  from mcc_jax import faces  # pylint: disable=import-outside-toplevel
  from mcc_jax.faces import tracking  # pylint: disable=import-outside-toplevel
  from mcc_jax.media import videos  # pylint: disable=import-outside-toplevel

  tracker = tracking.TubeTracker(args.iou, args.max_gap)
  tubes, count, frame_shape, by_detector = [], 0, None, collections.Counter()
  frames = videos.iterate_frames(args.input)
  with tqdm(frames, total=_frame_count(args.input), unit="frame",
            desc="detect faces") as progress:
    for index, frame in enumerate(progress):
      frame_shape = frame.shape[:2]
      found = faces.find_faces(frame, args.upsample)
      if len(found.boxes):
        by_detector[found.detector] += 1
      tubes += tracker.update(index, found.boxes)
      count = index + 1
  tubes += tracker.finish()
  return tubes, count, frame_shape, by_detector


def detector_summary(by_detector, count: int) -> str:
  """'faces found in 97 of 103 frames (hog 3, hog-full-resolution 0, cnn 94)'."""
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  counts = ", ".join(f"{name} {by_detector.get(name, 0)}"
                     for name in faces.DETECTORS if name != "none")
  return f"faces found in {sum(by_detector.values())} of {count} frames ({counts})"


def _write(args, face_crop, fps) -> int:
  """Writes frames [start, stop) of the input cropped to the box; returns the count."""
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.media import videos  # pylint: disable=import-outside-toplevel

  with media.VideoWriter(args.output, fps, crf=args.crf) as writer:
    for index, frame in enumerate(videos.iterate_frames(args.input)):
      if index >= face_crop.stop:
        break
      if index >= face_crop.start:
        writer.write(media.crop_and_resize(frame, face_crop.box, args.image_size))
  if writer.frames_written != face_crop.num_frames:  # The file changed since detection.
    args.output.unlink(missing_ok=True)
    raise _fail(f"{args.input}: decoded {writer.frames_written} of the tube's "
                f"{face_crop.num_frames} frames the second time")
  return writer.frames_written


def run(args: argparse.Namespace) -> int:
  _check_arguments(args)
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.faces import crop  # pylint: disable=import-outside-toplevel

  try:
    fps = media.read_video(args.input, max_frames=1).fps
    tubes, count, frame_shape, by_detector = _detect(args)
  except (media.MediaError, faces.FaceModelsError) as error:
    raise _fail(str(error)) from error
  with_face = sum(by_detector.values())
  if not with_face:
    raise _fail(f"{args.input}: no face found in any of its {count} frames")
  crops = crop.crops_of_tubes(tubes, frame_shape, increase=args.increase,
                              min_frames=args.min_frames)
  if not crops:
    longest = max(tube.num_frames for tube in tubes)
    raise _fail(f"{args.input}: {detector_summary(by_detector, count)}, but the "
                f"longest face tube has {longest} frames, fewer than --min-frames "
                f"{args.min_frames}")
  height, width = frame_shape
  print(f"{args.input}: {count} frames of {width}x{height} at {float(fps):.3f} fps; "
        f"a face in {with_face}; {len(crops)} face tube(s) of at least "
        f"{args.min_frames} frames")
  print(detector_summary(by_detector, count))

  if args.print_commands:
    for number, face_crop in enumerate(crops):
      start_s, duration_s = face_crop.time_span(fps)
      output = f"{args.input.stem}_crop{number}.mp4"
      print(crop.ffmpeg_command(args.input, start_s, duration_s, face_crop.box,
                                args.image_size, output, frame_shape=frame_shape))
    return 0

  chosen = crop.longest_crop(crops)
  if len(crops) > 1:
    print(f"writing the longest of the {len(crops)} tubes, frames {chosen.start}-"
          f"{chosen.stop - 1}; --print-commands lists them all")
  print(f"crop box {chosen.box} (left, top, right, bottom) for frames "
        f"{chosen.start}-{chosen.stop - 1}")
  try:
    written = _write(args, chosen, fps)
  except media.MediaError as error:
    raise _fail(str(error)) from error
  print(f"wrote {args.output}: {written} frames of {args.image_size}x{args.image_size} at "
        f"{float(fps):.3f} fps")
  return 0
