"""The local web page of ``mcc-jax demo`` (Gradio): animate an uploaded photo with an
uploaded video, with the options of ``mcc-jax animate``.

* :mod:`~mcc_jax.demo.offline`: no analytics, system fonts only (imported first: it
  configures gradio before gradio is imported).
* :mod:`~mcc_jax.demo.examples`: the bundled examples, written at start-up.
* :mod:`~mcc_jax.demo.animate_handler`: :class:`AnimateHandler`, the page's action and
  the ``/animate`` API endpoint, around :func:`mcc_jax.inference.animate_video`.
* :mod:`~mcc_jax.demo.app`: :func:`build_app`, the page's layout and wiring.
* :mod:`~mcc_jax.demo.server`: :func:`launch`, serving it.
"""

from mcc_jax import extras as _extras

_extras.require("demo", "mcc_jax.demo", own_only=True)
_extras.require("video", "mcc_jax.demo")

# pylint: disable=wrong-import-position
from mcc_jax.demo import offline  # noqa: E402,F401  (first: configures gradio)
from mcc_jax.demo.animate_handler import AnimateHandler  # noqa: E402
from mcc_jax.demo.animate_handler import animation_options  # noqa: E402
from mcc_jax.demo.app import API_NAME  # noqa: E402
from mcc_jax.demo.app import build_app  # noqa: E402
from mcc_jax.demo.examples import Example  # noqa: E402
from mcc_jax.demo.examples import write_examples  # noqa: E402
from mcc_jax.demo.server import launch  # noqa: E402

__all__ = [
    "API_NAME",
    "AnimateHandler",
    "Example",
    "animation_options",
    "build_app",
    "launch",
    "write_examples",
]
