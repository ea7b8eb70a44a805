"""The demo's tests share one launch of the page (random-weight 64x64 model) per session.

* ``demo_inputs``: a procedural head photo, an 8-frame driving clip, and bad uploads.
* ``animator``: the tiny checkpoint's :class:`~mcc_jax.inference.Animator` (its compiled
  programs are shared by the page and the reference computations of the tests).
* ``demo_server``: the page, launched in-process on a free port of 127.0.0.1 with the
  settings of ``mcc-jax demo``, closed at the end of the session; every host name looked
  up in the process meanwhile is recorded (``name_lookups``).
* ``client``: a ``gradio_client.Client`` of it.
"""

from __future__ import annotations

import socket
import types

import numpy as np
import pytest
from PIL import Image

DRIVING_FRAMES = 8


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
  return free_port()


@pytest.fixture(scope="session")
def demo_inputs(tmp_path_factory):
  """Upload files: a good pair, and what a user can get wrong."""
  from mcc_jax.demo import examples  # pylint: disable=import-outside-toplevel

  root = tmp_path_factory.mktemp("demo_inputs")
  paths = types.SimpleNamespace(
      photo=examples.write_procedural_head_photo(root / "head.png", size=96),
      driving=examples.write_procedural_driving_clip(root / "talking.mp4",
                                                     frames=DRIVING_FRAMES, size=80),
      not_an_image=root / "notes.txt", corrupt_video=root / "broken.mp4",
      grey_photo=root / "grey.png", driving_frames=DRIVING_FRAMES)
  paths.not_an_image.write_text("not a picture\n")
  paths.corrupt_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
  Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(paths.grey_photo)
  return paths


@pytest.fixture(scope="session")
def animator(tiny_checkpoint):
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel

  path, _ = tiny_checkpoint
  return inference.Animator(inference.load_model(checkpoint=path))


@pytest.fixture(scope="session")
def name_lookups():
  """Records every host name the process looks up (a connection starts with one)."""
  looked_up = []
  original_getaddrinfo, original_gethostbyname = socket.getaddrinfo, socket.gethostbyname

  def getaddrinfo(host, *args, **kwargs):
    looked_up.append(host.decode() if isinstance(host, bytes) else str(host or ""))
    return original_getaddrinfo(host, *args, **kwargs)

  def gethostbyname(host):
    looked_up.append(str(host))
    return original_gethostbyname(host)

  socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname
  try:
    yield looked_up
  finally:
    socket.getaddrinfo, socket.gethostbyname = original_getaddrinfo, original_gethostbyname


@pytest.fixture(scope="session")
def demo_server(name_lookups, animator, tmp_path_factory):  # pylint: disable=unused-argument
  """The page, served as ``mcc-jax demo`` serves it; yields (url, app, examples)."""
  from mcc_jax import demo  # pylint: disable=import-outside-toplevel

  workspace = tmp_path_factory.mktemp("demo_workspace")
  examples = demo.write_examples(workspace / "examples", driving_frames=DRIVING_FRAMES)
  handler = demo.AnimateHandler(animator, workspace / "results", batch_size=4)
  app = demo.build_app(handler, examples, model_summary="tiny random-weight model, 64x64")
  url = demo.launch(app, port=free_port())
  try:
    yield types.SimpleNamespace(url=url, app=app, examples=examples, workspace=workspace)
  finally:
    app.close(verbose=False)


@pytest.fixture(scope="session")
def client(demo_server, tmp_path_factory):
  """An offline client: gradio_client would otherwise fetch an agent registry from
  huggingface.co and send telemetry there (HF_HUB_OFFLINE=1 and analytics_enabled=False
  in docs/demo.md), which ``name_lookups`` would blame on the server."""
  from gradio_client import Client  # pylint: disable=import-outside-toplevel
  from huggingface_hub import constants  # pylint: disable=import-outside-toplevel

  downloads = tmp_path_factory.mktemp("demo_downloads")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(constants, "HF_HUB_OFFLINE", True)
    patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    yield Client(demo_server.url, verbose=False, download_files=str(downloads),
                 analytics_enabled=False)

