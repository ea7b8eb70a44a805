"""torchvision VGG state dicts -> :class:`VGGFeatures` params.

torchvision names a conv's tensors ``features.{i}.weight`` (O, I, 3, 3) and
``features.{i}.bias``; :class:`~mcc_jax.models.vgg.VGGFeatures` names them
``features_{i}`` with an HWIO ``kernel``. The classifier is not used by the loss and
is ignored; every tensor of ``features`` up to the last tap is mapped exactly once
and its shape checked.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.models.vgg import VGG_TAPS, conv_layers


def convert_vgg(state_dict: Mapping[str, Any], architecture: str = "vgg19") -> dict:
  """Maps a torchvision VGG state dict to ``{'params': ...}`` of VGGFeatures.

  Args:
    state_dict: name -> array (numpy or torch tensors), e.g. ``torchvision.models.vgg19()
      .state_dict()``; a ``features.`` / ``module.`` prefix layout as torchvision saves it.
    architecture: ``'vgg19'`` or ``'vgg16'``.

  Returns:
    ``{'params': {'features_{i}': {'kernel', 'bias'}}}`` float32 numpy arrays.

  Raises:
    ConversionError: naming a missing tensor, a tensor of the wrong shape, or a
      ``features`` tensor that is not used.
  """
  state = {k[len("module."):] if k.startswith("module.") else k: v
           for k, v in state_dict.items()}
  params, used = {}, set()
  for index, cin, cout in conv_layers(architecture):
    weight_name, bias_name = f"features.{index}.weight", f"features.{index}.bias"
    for name, shape in ((weight_name, (cout, cin, 3, 3)), (bias_name, (cout,))):
      if name not in state:
        raise ConversionError(f"{architecture}: the state dict has no tensor {name!r} "
                              f"(expected shape {shape})")
      value = np.asarray(state[name].detach().cpu().numpy() if hasattr(state[name], "detach")
                         else state[name], np.float32)
      if value.shape != shape:
        raise ConversionError(f"{architecture}: {name} has shape {value.shape}, expected {shape}")
      used.add(name)
    weight = np.asarray(state[weight_name].detach().cpu().numpy() if hasattr(
        state[weight_name], "detach") else state[weight_name], np.float32)
    bias = np.asarray(state[bias_name].detach().cpu().numpy() if hasattr(
        state[bias_name], "detach") else state[bias_name], np.float32)
    params[f"features_{index}"] = {"kernel": weight.transpose(2, 3, 1, 0), "bias": bias}
  last = VGG_TAPS[architecture][-1]
  unused = sorted(k for k in state if k.startswith("features.") and k not in used
                  and int(k.split(".")[1]) <= last)
  if unused:
    raise ConversionError(f"{architecture}: tensors not mapped: {', '.join(unused)}")
  return {"params": params}
