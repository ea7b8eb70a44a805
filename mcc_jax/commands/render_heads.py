"""``mcc-jax render-heads``: write one video of the procedural heads dataset to a file.

    mcc-jax render-heads --person 0 --output person0.mp4 [--first-frame person0.png] \
        [--split test] [--clip 0] [--frames 64] [--size 64] [--seed 0] [--fps 25]

The ``synthetic`` dataset renders its frames on demand and never stores them; this
writes the video ``synthetic-<split>-<person>#<clip>`` (the same frames training and
evaluation see with that seed, size and length) as an mp4, and optionally its first
frame as a PNG, so that ``mcc-jax animate`` can take a held-out person as the source
or the driving video. The test split's persons are never seen in training.
"""

from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--person", type=int, required=True, help="Person index within the split.")
  parser.add_argument("--output", type=pathlib.Path, required=True, help="The mp4 to write.")
  parser.add_argument("--first-frame", type=pathlib.Path, default=None,
                      help="Also write the video's first frame as a PNG here.")
  parser.add_argument("--split", choices=("train", "test"), default="test",
                      help="test (default): persons no model is trained on.")
  parser.add_argument("--clip", type=int, default=0, help="Which of the person's videos.")
  parser.add_argument("--frames", type=int, default=64, help="Video length.")
  parser.add_argument("--size", type=int, default=64, help="Side of the frames in pixels.")
  parser.add_argument("--seed", type=int, default=0, help="The dataset seed "
                      "(datasets.synthetic.seed).")
  parser.add_argument("--fps", type=float, default=25.0, help="Frame rate of the mp4.")


def run(args: argparse.Namespace) -> int:
  for flag, value, low in (("--person", args.person, 0), ("--clip", args.clip, 0),
                           ("--frames", args.frames, 2), ("--size", args.size, 16),
                           ("--seed", args.seed, 0)):
    if value < low:
      raise SystemExit(f"mcc-jax render-heads: error: {flag} must be at least {low}, "
                       f"got {value}")
  if args.fps <= 0:
    raise SystemExit(f"mcc-jax render-heads: error: --fps must be positive, got {args.fps}")
  from PIL import Image  # pylint: disable=import-outside-toplevel

  from mcc_jax.data_pipelines.sources import synthetic  # pylint: disable=import-outside-toplevel
  from mcc_jax.media import videos  # pylint: disable=import-outside-toplevel

  video = synthetic.synthetic_video(args.split, args.size, seed=args.seed, person=args.person,
                                    clip=args.clip, num_frames=args.frames)
  frames = video.read_all()
  args.output.parent.mkdir(parents=True, exist_ok=True)
  videos.write_video(args.output, frames, args.fps)
  written = [str(args.output)]
  if args.first_frame is not None:
    args.first_frame.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frames[0]).save(args.first_frame)
    written.append(str(args.first_frame))
  print(f"{video.name}: {len(frames)} frames at {args.size}x{args.size}; wrote "
        + ", ".join(written))
  return 0
