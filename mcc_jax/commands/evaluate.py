"""``mcc-jax evaluate``: score a model on a dataset's test videos.

    mcc-jax evaluate --checkpoint ckpt/ --output eval/ \
        [--config.datasets.name=folder --config.datasets.root=/data/vox] \
        [--mode reconstruction|cross_identity] [--metrics psnr,l1,lpips,akd,aed,fid] \
        [--max-videos N] [--max-frames N] [--per-video] [--fid-weights pt_inception.pth]

The networks come from the checkpoint; the test videos from the ``datasets`` block
saved with it, unless ``--config FILE`` (its ``datasets`` block) or
``--config.datasets.<field>=<value>`` overrides say otherwise. Writes
``OUTPUT/metrics.json`` (every metric with its definition, the frame counts, the
checkpoint and the mode), ``OUTPUT/metrics.md`` and, with ``--per-video``,
``OUTPUT/per_video.json``; the table is printed too. See
:mod:`mcc_jax.evaluation.protocol` for the two modes.
"""

from __future__ import annotations

import argparse
import pathlib

from mcc_jax.commands import model_flags


_DATASETS_PREFIX = "--config.datasets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
  model_flags.add_model_arguments(parser)
  parser.add_argument("--output", type=pathlib.Path, required=True,
                      help="Directory for metrics.json, metrics.md (and per_video.json).")
  parser.add_argument("--mode", choices=("reconstruction", "cross_identity"),
                      default="reconstruction",
                      help="reconstruction: frame 0 of each video reconstructs every frame "
                      "with absolute motion (the paper's protocol; default). cross_identity: "
                      "another person's video drives the first frame with relative motion.")
  parser.add_argument("--metrics", default=None,
                      help="Comma-separated subset of psnr,l1,lpips,akd,aed,csim,fid "
                      "(default: psnr,l1,lpips,akd,aed for reconstruction, csim,aed,akd for "
                      "cross_identity, with psnr,l1,lpips against the rendered ground truth "
                      "on the synthetic dataset; fid too when --fid-weights is given).")
  parser.add_argument("--max-videos", type=int, default=None,
                      help="Evaluate only the first N test videos (by name).")
  parser.add_argument("--max-frames", type=int, default=None,
                      help="Use only the first N frames of each video.")
  parser.add_argument("--batch-size", type=int, default=8,
                      help="Frames per compiled call of the model and the metric networks.")
  parser.add_argument("--per-video", action="store_true",
                      help="Also write per_video.json with each video's means.")
  parser.add_argument("--fid-weights", type=pathlib.Path, default=None,
                      help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (from "
                      "pytorch-fid's GitHub releases); enables FID. Reading it needs torch.")
  parser.add_argument("--fid-reference", choices=("driving", "source"), default="driving",
                      help="FID compares the generated frames with the real driving frames "
                      "(default) or, as the official evaluation does, with the source image "
                      "repeated once per generated frame (source).")
  parser.add_argument("--face-box", choices=("detect", "frame"), default="detect",
                      help="AKD/AED/CSIM faces: found by dlib's detector in every image "
                      "(default; frames where a face is missed are skipped and counted) or "
                      "the whole frame taken as the face (face-cropped datasets).")
  parser.add_argument("--face-workers", type=int, default=0,
                      help="Processes measuring faces with dlib (default 0: this process).")
  parser.epilog = ("The test videos come from the datasets block saved with the weights. "
                   "--config.datasets.<field>=<value> changes a field of it (e.g. "
                   "--config.datasets.root=/data/vox); --config FILE takes the datasets "
                   "block of a get_config() file instead (with any --config.<field> "
                   "overrides). The model always comes from the checkpoint.")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax evaluate: error: {message}")


def _check_arguments(args) -> None:
  for flag, value, low in (("--batch-size", args.batch_size, 1),
                           ("--max-videos", args.max_videos, 1),
                           ("--max-frames", args.max_frames, 1),
                           ("--face-workers", args.face_workers, 0)):
    if value is not None and value < low:
      raise _fail(f"{flag} must be at least {low}, got {value}")
  if args.fid_weights is not None and not args.fid_weights.is_file():
    raise _fail(f"--fid-weights {args.fid_weights}: no such file (expected pytorch-fid's "
                f"pt_inception-2015-12-05-6726825d.pth)")
  if args.output.exists() and not args.output.is_dir():
    raise _fail(f"--output {args.output}: exists and is not a directory")


def _requested_metrics(args) -> tuple[str, ...] | None:
  """The --metrics list, checked against the mode (before anything slow happens)."""
  from mcc_jax.evaluation import metric_catalog  # pylint: disable=import-outside-toplevel

  requested = None
  if args.metrics is not None:
    requested = tuple(name.strip().lower() for name in args.metrics.split(",") if name.strip())
    if not requested:
      raise _fail("--metrics names no metric")
  try:
    # The dataset is not known yet: ground-truth metrics in cross-identity mode are
    # checked against it once it is (only the synthetic dataset has a ground truth).
    metrics = metric_catalog.resolve_metrics(args.mode, requested,
                                             rendered_ground_truth=args.mode == "cross_identity",
                                             fid_available=args.fid_weights is not None)
  except metric_catalog.UnknownMetricError as error:
    raise _fail(f"--metrics: {error}") from error
  if "fid" in metrics and args.fid_weights is None:
    raise _fail("FID needs the Inception weights: pass --fid-weights PATH to pytorch-fid's "
                "pt_inception-2015-12-05-6726825d.pth (or leave fid out of --metrics)")
  return requested


def _override_datasets(datasets, overrides: list[str]):
  """Applies ``--config.datasets.x=y`` overrides to a ``datasets`` block in memory.

  The block is rebuilt on :func:`data_pipelines.datasets_config` first: a configuration
  read back from JSON has lost the types of its unset fields (``max_videos`` is a bare
  None), which flags could not override.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  import ml_collections  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel

  from mcc_jax.data_pipelines import datasets_config  # pylint: disable=import-outside-toplevel
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  known = datasets_config()
  saved = {key: tuple(value) if isinstance(value, list) else value
           for key, value in datasets.to_dict().items() if key in known}
  config = ml_collections.ConfigDict({"datasets": datasets_config(**saved)})
  argv = ["mcc-jax evaluate", *overrides]
  values = flags.FlagValues()
  try:
    config_flags.DEFINE_config_dict("config", config, "Configuration.", flag_values=values,
                                    lock_config=True, sys_argv=argv)
    values(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as error:
    message = str(error).strip().strip("'").replace("\\n", " ").replace("\n", " ")
    message = message.replace("\\'", "'")
    raise config_cli.ConfigArgumentError(f"invalid --config argument: {message}") from error
  return values.config.datasets


def _config_overrides(args) -> tuple[bool, list[str]]:
  """(whether --config FILE was given, the --config arguments as ``--x=y`` strings).

  Raises:
    ConfigArgumentError: without a file, an override of something else than a
      ``datasets`` field.
  """
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  config_args = list(getattr(args, "config_args", []) or [])
  has_file = any(a == "--config" or a.startswith("--config=") for a in config_args)
  if has_file:
    return True, config_args
  # split_config_args keeps "--config.x value" as two items; flags want "--config.x=value".
  overrides, i = [], 0
  while i < len(config_args):
    if "=" in config_args[i] or i + 1 == len(config_args):
      overrides.append(config_args[i])
      i += 1
    else:
      overrides.append(f"{config_args[i]}={config_args[i + 1]}")
      i += 2
  for arg in overrides:
    if not arg.startswith(_DATASETS_PREFIX):
      raise config_cli.ConfigArgumentError(
          f"{arg}: without --config FILE only --config.datasets.<field> can be overridden "
          f"(the model comes from the checkpoint)")
  return False, overrides


def _datasets(has_file: bool, config_args: list[str], model):
  """The datasets block to evaluate: the checkpoint's, a file's, or an overridden one."""
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  if has_file:
    return config_cli.parse_config(config_args, prog="mcc-jax evaluate").datasets
  if config_args:
    return _override_datasets(model.config.datasets, config_args)
  return model.config.datasets


def run(args: argparse.Namespace) -> int:
  _check_arguments(args)
  requested = _requested_metrics(args)
  has_file, config_args = _config_overrides(args)
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel
  from mcc_jax.evaluation import eval_videos  # pylint: disable=import-outside-toplevel
  from mcc_jax.evaluation import fid  # pylint: disable=import-outside-toplevel
  from mcc_jax.evaluation import metric_catalog  # pylint: disable=import-outside-toplevel
  from mcc_jax.evaluation import protocol  # pylint: disable=import-outside-toplevel
  from mcc_jax.evaluation import report  # pylint: disable=import-outside-toplevel

  try:
    model = inference.load_model(workdir=args.workdir, checkpoint=args.checkpoint,
                                 step=args.step, use_ema=args.ema)
  except (FileNotFoundError, inference.CheckpointMismatchError) as error:
    raise _fail(str(error)) from error
  datasets = _datasets(has_file, config_args, model)
  print(f"model: {model.description}, {model.image_size}x{model.image_size}")
  options = protocol.EvaluationOptions(
      mode=args.mode, metrics=requested, max_videos=args.max_videos,
      max_frames=args.max_frames, batch_size=args.batch_size, face_box=args.face_box,
      face_workers=args.face_workers, fid_reference=args.fid_reference,
      fid_weights=None if args.fid_weights is None else str(args.fid_weights))
  try:
    result = protocol.evaluate(model, datasets, options)
  except (FileNotFoundError, eval_videos.EmptyTestSplitError, fid.FIDWeightsError,
          metric_catalog.UnknownMetricError, ValueError) as error:
    # Bad paths, an empty or unreadable split, invalid dataset fields: the user's to fix.
    raise _fail(str(error)) from error
  notes = []
  if "fid" not in result.metrics:
    notes.append("fid: not computed; pass --fid-weights PATH (pytorch-fid's "
                 "pt_inception-2015-12-05-6726825d.pth) to enable it")
  if result.skipped_videos:
    notes.append(f"{len(result.skipped_videos)} unreadable test video(s) skipped; see "
                 f"metrics.json")
  paths = report.write(result, args.output, model_description=model.description, notes=notes,
                       per_video=args.per_video)
  print(report.markdown(result, model_description=model.description, notes=notes))
  print("wrote " + ", ".join(str(p) for p in paths))
  return 0
