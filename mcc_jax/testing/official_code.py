"""Imports the official PyTorch networks from a user's checkout, for parity checks only.

The official repository (ShaelynZ/synergize-motion-appearance) is a basicsr fork whose
package ``__init__`` imports its whole training stack (datasets, metrics, compiled
ops, OpenCV, ...). The parity check needs only a handful of network files, so this
module registers light stand-ins for ``basicsr``, ``basicsr.utils`` and
``basicsr.archs`` and then executes the real network files from the checkout. Nothing of
the official code is copied into this project; it is read from ``repo`` at run time.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pathlib
import sys
import types

_NETWORK_FILES = {
    "vqgan": "basicsr/archs/vqgan_arch.py",
    "codebook": "basicsr/archs/appmotioncodebook_arch.py",
    "keypoint_detector": "basicsr/archs/keypoint_detector_arch.py",
    "dense_motion": "basicsr/archs/dense_motion_arch.py",
    "motion_estimator": "basicsr/archs/motion_estimator_arch.py",
}


class OfficialCode(types.SimpleNamespace):
  """The official network classes, as attributes (``AppMotionCompFormer``, ...)."""


def _package(name: str, path: pathlib.Path | None) -> types.ModuleType:
  module = types.ModuleType(name)
  module.__path__ = [str(path)] if path is not None else []
  sys.modules[name] = module
  return module


def _exec_file(name: str, path: pathlib.Path) -> types.ModuleType:
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


def load(repo: str | pathlib.Path) -> OfficialCode:
  """Executes the official network definitions from a checkout.

  Args:
    repo: root of a checkout of the official repository (the folder holding
      ``basicsr/`` and ``options/``).

  Returns:
    An :class:`OfficialCode` with the classes ``AppMotionCompFormer``,
    ``VQGANDiscriminator``, ``KPDetector``, ``DenseMotionNetwork`` and
    ``Motion_Estimator_keypoint_aware``.

  Raises:
    FileNotFoundError: when ``repo`` does not look like such a checkout.
  """
  repo = pathlib.Path(repo).expanduser().resolve()
  missing = [rel for rel in _NETWORK_FILES.values() if not (repo / rel).is_file()]
  if missing:
    raise FileNotFoundError(
        f"{repo} is not a checkout of the official repository: missing {', '.join(missing)}.")
  for name in list(sys.modules):
    if name == "basicsr" or name.startswith("basicsr."):
      del sys.modules[name]

  root = _package("basicsr", repo / "basicsr")
  utils = _package("basicsr.utils", repo / "basicsr" / "utils")
  archs = _package("basicsr.archs", repo / "basicsr" / "archs")
  root.utils, root.archs = utils, archs

  # What the network files import from basicsr.utils, minus the I/O helpers they
  # never call while building or running the networks.
  utils.get_root_logger = lambda *args, **kwargs: logging.getLogger("official")

  def _unused(*args, **kwargs):
    raise NotImplementedError("not available in the parity stand-in")

  utils.tensor2img = utils.imwrite = _unused
  utils.GradLayer = type("GradLayer", (), {})
  utils.registry = importlib.import_module("basicsr.utils.registry")
  motion_util = importlib.import_module("basicsr.utils.motion_estimator_util")
  utils.make_coordinate_grid = motion_util.make_coordinate_grid

  modules = {key: _exec_file(f"basicsr.archs.{pathlib.Path(rel).stem}", repo / rel)
             for key, rel in _NETWORK_FILES.items()}
  return OfficialCode(
      AppMotionCompFormer=modules["codebook"].AppMotionCompFormer,
      VQGANDiscriminator=modules["vqgan"].VQGANDiscriminator,
      KPDetector=modules["keypoint_detector"].KPDetector,
      DenseMotionNetwork=modules["dense_motion"].DenseMotionNetwork,
      MotionEstimator=modules["motion_estimator"].Motion_Estimator_keypoint_aware,
      motion_util=motion_util,
  )
