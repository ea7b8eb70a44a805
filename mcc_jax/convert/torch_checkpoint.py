"""Reading PyTorch ``.pth`` checkpoints into numpy state dicts (needs torch).

The official training saves each network as ``{'params': state_dict}`` and the
generator also as ``{'params_ema': state_dict}`` (the exponential moving average the
paper evaluates); a bare state dict is accepted too.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np


def load_state_dict(path: str | pathlib.Path, key: str | None = None) -> dict[str, np.ndarray]:
  """Loads a state dict from a ``.pth`` file.

  Args:
    path: the checkpoint file.
    key: top-level entry holding the state dict (``'params_ema'``, ``'params'``); None
      picks ``'params_ema'``, then ``'params'``, then the file itself.

  Returns:
    tensor name -> numpy array.

  Raises:
    ImportError: torch is not installed.
    FileNotFoundError / ValueError: naming the file and what was wrong.
  """
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError("reading PyTorch checkpoints needs torch: pip install 'mcc-jax[convert]'"
                      ) from error
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint {path} does not exist")
  try:
    content: Any = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as error:  # torch raises many types for corrupt files
    raise ValueError(f"checkpoint {path} could not be read by torch.load: {error}") from error
  if not isinstance(content, dict):
    raise ValueError(f"checkpoint {path} holds a {type(content).__name__}, not a state dict")
  if key is not None:
    if key not in content:
      raise ValueError(f"checkpoint {path} has no entry {key!r}; it has {sorted(content)[:10]}")
    content = content[key]
  else:
    for candidate in ("params_ema", "params"):
      if candidate in content and isinstance(content[candidate], dict):
        content = content[candidate]
        break
  state = {}
  for name, value in content.items():
    if not hasattr(value, "detach"):
      raise ValueError(f"checkpoint {path}: entry {name!r} is a {type(value).__name__}, "
                       f"not a tensor (pass the key of the state dict)")
    state[name] = value.detach().cpu().numpy()
  return state
