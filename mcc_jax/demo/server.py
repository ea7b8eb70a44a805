"""Serving the page: on this machine only unless asked, with nothing fetched from elsewhere.

:func:`launch` starts Gradio's server in a background thread and returns its address;
``app.close()`` stops it. ``mcc-jax demo`` and the tests launch the page through it, so
that both run with the same settings: no public share link, no server-side rendering
(a Node.js process), no MCP server or progressive web app, no run history (Gradio would
keep each run's inputs in the browser and offer to upload them to a Hugging Face
bucket), the offline theme, and errors shown in the page.
"""

from __future__ import annotations

import gradio as gr

from mcc_jax.demo import offline


def launch(app: gr.Blocks, *, host: str = offline.LOOPBACK_HOST,
           port: int | None = None) -> str:
  """Starts serving ``app`` without blocking; returns its local address.

  Args:
    app: the page (:func:`mcc_jax.demo.app.build_app`).
    host: the address to listen on; the default is reachable from this machine only.
    port: the port; None: Gradio's first free port from 7860 on.

  Returns:
    The page's address, ``http://127.0.0.1:7860/``.

  Raises:
    OSError: the port is taken (or no port of Gradio's range is free).
  """
  _, local_url, _ = app.launch(
      prevent_thread_lock=True, server_name=host, server_port=port, share=False,
      inbrowser=False, quiet=True, show_error=True, ssr_mode=False, mcp_server=False,
      pwa=False, enable_monitoring=False, run_history=False,
      footer_links=["api", "settings"], theme=offline.offline_theme())
  return local_url
