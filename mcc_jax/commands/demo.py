"""``mcc-jax demo``: a local web page that animates an uploaded photo with an uploaded video.

    mcc-jax demo (--workdir DIR | --checkpoint PATH) [--port N] [--host ADDR] \\
        [--batch-size 8] [--max-frames N]

Loads the model once, writes the bundled examples into a temporary directory, and
serves a Gradio page at http://127.0.0.1:7860/ (or the next free port; ``--port``
chooses one) until interrupted (Ctrl+C). In the page: upload a photo and a video (or
pick an example), set the options of ``mcc-jax animate`` (relative or absolute motion,
adapt scale, crop face, find best frame, side by side, show flow), press Animate; the
progress shows while it runs and the result plays in the page, with a download button.
The same action is the API endpoint ``/animate`` (see docs/demo.md).

The page is served to this machine only unless ``--host`` says otherwise, sends no
analytics and loads nothing from the internet. Uploads and results live in temporary
directories removed when the demo stops.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import signal
import tempfile
import time

from mcc_jax.commands import model_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  model_flags.add_model_arguments(parser)
  parser.add_argument("--host", default="127.0.0.1",
                      help="Address to listen on (default 127.0.0.1: this machine only; "
                      "0.0.0.0 lets any machine that reaches this one use the page).")
  parser.add_argument("--port", type=int, default=None,
                      help="Port to listen on (default: 7860, or the next free one).")
  parser.add_argument("--batch-size", type=int, default=8, help="Frames per compiled call.")
  parser.add_argument("--max-frames", type=int, default=None,
                      help="Use only the first N frames of each driving video (a bound on "
                      "the work one request can ask for; default: all).")
  parser.epilog = ("--config PATH and --config.<field>=<value> optionally replace the "
                   "configuration saved with the weights (which must then fit it).")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax demo: error: {message}")


def _check_arguments(args) -> None:
  if args.port is not None and not 1 <= args.port <= 65535:
    raise _fail(f"--port must be in 1..65535, got {args.port}")
  if not args.host.strip():
    raise _fail("--host must be an address (127.0.0.1, 0.0.0.0, a host name), got ''")
  if args.batch_size < 1:
    raise _fail(f"--batch-size must be at least 1, got {args.batch_size}")
  if args.max_frames is not None and args.max_frames < 1:
    raise _fail(f"--max-frames must be at least 1, got {args.max_frames}")


def _interrupt(signum, frame):  # pylint: disable=unused-argument
  raise KeyboardInterrupt


@contextlib.contextmanager
def _stopped_by_ctrl_c_or_sigterm():
  """Within: SIGINT (even where the shell that started the demo ignores it) and SIGTERM
  raise KeyboardInterrupt; the previous handlers are restored after."""
  signals = (signal.SIGINT, signal.SIGTERM)
  previous = {number: signal.signal(number, _interrupt) for number in signals}
  try:
    yield
  finally:
    for number, handler in previous.items():
      signal.signal(number, handler)


def run(args: argparse.Namespace) -> int:
  _check_arguments(args)
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel

  animator = inference.Animator(model_flags.load_model(args, "demo"))
  summary = f"{animator.description}, {animator.image_size}x{animator.image_size}"
  print(f"model: {summary}")

  from mcc_jax import demo  # pylint: disable=import-outside-toplevel  (imports gradio)

  with tempfile.TemporaryDirectory(prefix="mcc-jax-demo-") as workspace:
    workspace = pathlib.Path(workspace)
    examples = demo.write_examples(workspace / "examples")
    handler = demo.AnimateHandler(animator, workspace / "results",
                                  batch_size=args.batch_size, max_frames=args.max_frames)
    app = demo.build_app(handler, examples, model_summary=summary)
    with _stopped_by_ctrl_c_or_sigterm():
      try:
        try:
          url = demo.launch(app, host=args.host, port=args.port)
        except OSError as error:
          ports = args.port if args.port is not None else "7860 and up (none free)"
          raise _fail(f"cannot listen on {args.host} port {ports}: the port is taken or "
                      f"the address is not this machine's; choose another with --port or "
                      f"--host") from error
        if not demo.offline.is_loopback(args.host):
          print(f"mcc-jax demo: listening on {args.host}: anyone who can reach this "
                "machine can use the page")
        print(f"mcc-jax demo: serving {url} (Ctrl+C to stop)", flush=True)
        while True:
          time.sleep(0.5)
      except KeyboardInterrupt:
        print("mcc-jax demo: stopping")
      finally:
        app.close(verbose=False)
  return 0
