"""``mcc-jax demo`` on the command line: bad flags refused, the page served until Ctrl+C."""

import contextlib
import io
import os
import re
import signal
import socket
import threading
import time
import urllib.request

import pytest

from mcc_jax import cli


def _demo(*argv):
  return cli.main(["demo", *argv])


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "CHECKPOINT", "--port", "70000"], "--port must be in 1..65535, got 70000"),
    (["--checkpoint", "CHECKPOINT", "--port", "0"], "--port must be in 1..65535, got 0"),
    (["--checkpoint", "CHECKPOINT", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--checkpoint", "CHECKPOINT", "--max-frames", "-2"], "--max-frames must be at least 1"),
    (["--checkpoint", "CHECKPOINT", "--host", " "], "--host must be an address"),
    (["--checkpoint", "MISSING"], "nothing: no such checkpoint directory"),
])
def test_bad_flags_are_refused_with_a_clear_message(tiny_checkpoint, tmp_path, argv, message):
  checkpoint, _ = tiny_checkpoint
  argv = [str(checkpoint) if a == "CHECKPOINT" else str(tmp_path / "nothing") if a == "MISSING"
          else a for a in argv]
  with pytest.raises(SystemExit, match=re.escape(message)) as raised:
    _demo(*argv)
  assert str(raised.value).startswith("mcc-jax demo: error: ")


@pytest.mark.parametrize("argv, message", [
    ([], "one of the arguments --workdir --checkpoint is required"),
    (["--checkpoint", "x", "--workdir", "y"], "not allowed with argument"),
    (["--checkpoint", "x", "--port", "web"], "argument --port: invalid int value: 'web'"),
])
def test_flags_argparse_refuses(argv, message, capsys):
  with pytest.raises(SystemExit) as raised:
    _demo(*argv)
  assert raised.value.code == 2
  assert message in capsys.readouterr().err


def test_serves_the_page_on_127_0_0_1_until_interrupted(tiny_checkpoint, unused_port):
  handler_before = signal.getsignal(signal.SIGINT)
  checkpoint, _ = tiny_checkpoint
  port = unused_port
  url = f"http://127.0.0.1:{port}/"
  seen = {}

  def visit_then_interrupt():
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "page" not in seen:
      try:
        with urllib.request.urlopen(url, timeout=5) as response:
          seen["page"] = response.read().decode()
        with urllib.request.urlopen(url + "config", timeout=5) as response:
          seen["config"] = response.read().decode()
      except OSError:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C, whatever happened.

  visitor = threading.Thread(target=visit_then_interrupt, daemon=True)
  visitor.start()
  # Not capsys: while it replaces sys.stderr, launching a server lets uvicorn reconfigure
  # logging, and absl's handler then closes the stream it holds (pytest's own).
  with contextlib.redirect_stdout(io.StringIO()) as printed:
    assert _demo("--checkpoint", str(checkpoint), "--port", str(port)) == 0
  visitor.join()
  out = printed.getvalue()
  assert f"mcc-jax demo: serving {url} (Ctrl+C to stop)" in out
  assert "mcc-jax demo: stopping" in out
  assert "<html" in seen["page"]
  config = seen["config"].replace(" ", "")
  assert '"title":"mcc-jax demo"' in config.replace("mcc-jaxdemo", "mcc-jax demo")
  assert '"analytics_enabled":false' in config
  # Stopped: nothing listens on the port any more, and Ctrl+C works as before.
  with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # Past TIME_WAIT.
    probe.bind(("127.0.0.1", port))
    probe.listen()
  # (The handler the test started with: Python's default in a terminal, SIG_IGN when
  # the suite runs in the background.)
  assert signal.getsignal(signal.SIGINT) is handler_before


def test_taken_port_is_refused_with_a_clear_message(tiny_checkpoint):
  checkpoint, _ = tiny_checkpoint
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with pytest.raises(SystemExit, match=f"cannot listen on 127.0.0.1 port {port}: the port "
                                         "is taken"):
      _demo("--checkpoint", str(checkpoint), "--port", str(port))
