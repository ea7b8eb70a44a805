"""Mapping PyTorch state dicts onto Flax variable trees, one tensor at a time.

A :class:`StateDictMapper` hands out the tensors of a state dict by name, converting
layouts on the way (NCHW convolution kernels to HWIO, ``(out, in)`` linear weights to
``(in, out)``) and remembering what it handed out. A conversion is complete only when

* every tensor of the state dict was taken exactly once (:meth:`StateDictMapper.finish`),
* and the produced tree has exactly the paths and shapes the Flax model expects
  (:func:`check_tree_matches`).

Both checks raise :class:`ConversionError` listing every offending name, so a
checkpoint from a different configuration fails loudly instead of loading partially.
Only numpy is needed here; reading ``.pth`` files (which needs torch) lives in
:mod:`mcc_jax.convert.torch_checkpoint`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

Tree = dict[str, Any]


class ConversionError(ValueError):
  """A state dict does not map one-to-one onto the Flax model."""


class StateDictMapper:
  """Consumes a PyTorch state dict tensor by tensor.

  Args:
    state: tensor name -> array (numpy, or anything ``np.asarray`` accepts).
    prefix: prepended to every name asked for (e.g. ``'kp_detector.'``).
    ignore: names that exist in the state dict but carry no model parameter
      (BatchNorm's ``num_batches_tracked`` counters, for instance); they count as
      taken.
  """

  def __init__(self, state: Mapping[str, Any], prefix: str = "", ignore: tuple[str, ...] = ()):
    self._state = {name: np.asarray(value) for name, value in state.items()}
    self._taken: set[str] = set()
    self._prefix = prefix
    for name in ignore:
      if name in self._state:
        self._taken.add(name)

  def scoped(self, prefix: str) -> "StateDictMapper":
    """A view on the same state dict whose names are relative to ``prefix``."""
    view = StateDictMapper.__new__(StateDictMapper)
    view._state, view._taken = self._state, self._taken
    view._prefix = self._prefix + prefix
    return view

  def take(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Returns tensor ``prefix + name`` and marks it as used.

    Raises:
      ConversionError: if it is missing, was taken before, or has another shape.
    """
    full = self._prefix + name
    if full not in self._state:
      raise ConversionError(f"the state dict has no tensor {full!r}")
    if full in self._taken:
      raise ConversionError(f"tensor {full!r} was mapped twice")
    value = self._state[full]
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ConversionError(
          f"tensor {full!r} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    self._taken.add(full)
    return value

  def has(self, name: str) -> bool:
    """Whether tensor ``prefix + name`` exists."""
    return self._prefix + name in self._state

  def conv(self, name: str, *, bias: bool = True) -> Tree:
    """An ``nn.Conv2d`` (OIHW) as a Flax ``nn.Conv`` (HWIO): ``{'kernel', 'bias'}``."""
    out = {"kernel": np.transpose(self.take(f"{name}.weight"), (2, 3, 1, 0))}
    if bias:
      out["bias"] = self.take(f"{name}.bias")
    return out

  def conv1x1_as_dense(self, name: str) -> Tree:
    """A 1x1 ``nn.Conv2d`` as a Flax ``nn.Dense`` over channels."""
    weight = self.take(f"{name}.weight")
    if weight.shape[2:] != (1, 1):
      raise ConversionError(f"tensor {self._prefix + name}.weight is not a 1x1 convolution")
    return {"kernel": weight[:, :, 0, 0].T, "bias": self.take(f"{name}.bias")}

  def dense(self, name: str, *, bias: bool = True) -> Tree:
    """An ``nn.Linear`` (out, in) as a Flax ``nn.Dense`` (in, out)."""
    out = {"kernel": self.take(f"{name}.weight").T}
    if bias:
      out["bias"] = self.take(f"{name}.bias")
    return out

  def norm(self, name: str) -> Tree:
    """A GroupNorm / LayerNorm / affine norm: ``{'scale', 'bias'}``."""
    return {"scale": self.take(f"{name}.weight"), "bias": self.take(f"{name}.bias")}

  def batch_norm(self, name: str) -> tuple[Tree, Tree]:
    """An ``nn.BatchNorm2d``: (params ``{'scale', 'bias'}``, batch_stats ``{'mean', 'var'}``).

    ``num_batches_tracked`` is consumed too: it only drives PyTorch's cumulative
    momentum, which the official configuration does not use.
    """
    params = self.norm(name)
    stats = {"mean": self.take(f"{name}.running_mean"),
             "var": self.take(f"{name}.running_var")}
    if self.has(f"{name}.num_batches_tracked"):
      self.take(f"{name}.num_batches_tracked")
    return params, stats

  def untaken(self) -> list[str]:
    """Names of tensors not mapped so far, sorted."""
    return sorted(set(self._state) - self._taken)

  def finish(self) -> None:
    """Raises :class:`ConversionError` if any tensor of the state dict was not mapped."""
    left = self.untaken()
    if left:
      raise ConversionError(
          f"{len(left)} tensor(s) of the state dict were not mapped: " + ", ".join(left))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      flat.update(_flatten(value, path))
    else:
      flat[path] = value
  return flat


def check_tree_matches(converted: Mapping[str, Any], expected: Mapping[str, Any],
                       what: str = "model") -> None:
  """Checks that two variable trees have the same paths and leaf shapes.

  Args:
    converted: the tree built from the state dict.
    expected: the model's own tree (arrays or ``jax.ShapeDtypeStruct`` leaves, e.g.
      from ``jax.eval_shape(model.init, ...)``).
    what: name used in the error message.

  Raises:
    ConversionError: listing missing paths, unexpected paths and shape mismatches.
  """
  got, want = _flatten(converted), _flatten(expected)
  missing = sorted(set(want) - set(got))
  unexpected = sorted(set(got) - set(want))
  wrong = sorted(f"{path}: {tuple(np.shape(got[path]))} vs expected {tuple(want[path].shape)}"
                 for path in set(got) & set(want)
                 if tuple(np.shape(got[path])) != tuple(want[path].shape))
  problems = []
  if missing:
    problems.append(f"missing {len(missing)}: " + ", ".join(missing))
  if unexpected:
    problems.append(f"unexpected {len(unexpected)}: " + ", ".join(unexpected))
  if wrong:
    problems.append(f"wrong shape {len(wrong)}: " + ", ".join(wrong))
  if problems:
    raise ConversionError(f"converted {what} variables do not match the model: "
                          + "; ".join(problems))
