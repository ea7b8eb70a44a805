"""Keeping the demo offline and private: no analytics, nothing fetched from elsewhere.

Gradio sends usage analytics and asks api.gradio.app for its newest version unless
``GRADIO_ANALYTICS_ENABLED`` is ``False`` (set here, before gradio is imported, for the
whole process) or a ``Blocks`` is built with ``analytics_enabled=False`` (the page is
too). A theme's fonts are downloaded by the page: from Google Fonts for the fonts
Gradio names ``GoogleFont``, from the server for its own; :func:`offline_theme` names
only fonts the system already has, so none is downloaded.
``tests/demo/demo_browser_test.py`` checks in Chromium that every request the page makes
goes to the local server.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402  (after the environment, on purpose)

# Where the server listens unless told otherwise: this machine only.
LOOPBACK_HOST = "127.0.0.1"
# Font stacks the operating system already provides (no download).
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
                "Noto Sans", "Liberation Sans", "sans-serif")
SYSTEM_MONOSPACE_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas",
                          "Liberation Mono", "DejaVu Sans Mono", "monospace")


def offline_theme() -> gr.themes.Base:
  """Gradio's default theme with system fonts only (no web font to fetch)."""
  return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(SYSTEM_MONOSPACE_FONTS))


def is_loopback(host: str) -> bool:
  """Whether ``host`` is reachable from this machine only."""
  return host in ("127.0.0.1", "localhost", "::1", "[::1]") or host.startswith("127.")
