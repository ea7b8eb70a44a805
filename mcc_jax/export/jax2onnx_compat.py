"""Fixes for jax2onnx 0.13.0 running on jax 0.10, applied only while a graph converts.

jax2onnx 0.13.0 is pinned (later releases cap orbax-checkpoint below the version this
project uses) and predates jax 0.10. Converting this project's networks meets four of
its bugs, each fixed here by the smallest change to the converter's own modules, undone
when the conversion ends (:func:`patched`):

* ``jax.interpreters.batching.not_mapped`` no longer exists (jax 0.10 writes
  ``None``): the batching rules of the converter's own primitives (``jnp.clip`` under
  the dense motion network's ``vmap``) fail. Its plugin modules get a ``batching``
  that has it again.
* ``lax.pad`` on a tensor whose leading dimension is a product of the symbolic batch
  (``3*B``: the anti-aliasing blur folds channels into the batch) fails to state its
  output's shape. It is stated with the symbolic dimension's name instead.
* ``jnp.linalg.inv`` of (B, K, 2, 2) jacobians converts ``B`` to an ``int`` only to
  state shapes. Symbolic dimensions are kept as they are.
* ``flax.linen.leaky_relu(x, 0.2)`` (the slope given by position) binds the slope as a
  second operand, which the ``LeakyRelu`` lowering does not expect. The slope is bound
  as the parameter it is.

Every fix is checked by the export tests: the converted graphs equal JAX's outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import types
from collections.abc import Iterator

import jax
import numpy as np


def _ir_with_symbolic_shapes(onnx_ir) -> types.ModuleType:
  """``onnx_ir`` whose ``Shape`` accepts symbolic dimension expressions (``3*B``)."""

  def shape(dims, *args, **kwargs):
    named = [d if d is None or isinstance(d, (int, np.integer, str, onnx_ir.SymbolicDim))
             else onnx_ir.SymbolicDim(str(d)) for d in dims]
    return onnx_ir.Shape(named, *args, **kwargs)

  module = types.ModuleType("onnx_ir_with_symbolic_shapes")
  module.__dict__.update(vars(onnx_ir))
  module.Shape = shape
  return module


def _batching_with_not_mapped() -> types.ModuleType:
  """``jax.interpreters.batching`` with ``not_mapped`` (None since jax 0.10)."""
  from jax.interpreters import batching  # pylint: disable=import-outside-toplevel

  module = types.ModuleType("batching_with_not_mapped")
  for name in ("bdim_at_front", "primitive_batchers", "fancy_primitive_batchers"):
    setattr(module, name, getattr(batching, name))
  module.not_mapped = None
  return module


class _IntKeepingSymbolicDimensions(type):
  """``int`` for the 2x2 inverse's lowering: symbolic dimensions pass through."""

  def __instancecheck__(cls, instance) -> bool:
    return isinstance(instance, int)

  def __call__(cls, value=0, *args):
    if not args and jax.export.is_symbolic_dim(value):
      return value
    return int(value, *args)


class _Int(metaclass=_IntKeepingSymbolicDimensions):
  pass


def _leaky_relu_binding_specs(plugin):
  """The plugin's patches, binding a positional slope as the ``negative_slope`` parameter."""
  from jax2onnx.plugins._patching import MonkeyPatchSpec  # pylint: disable=import-outside-toplevel

  original = plugin.binding_specs

  def binding_specs():
    def make_value(unused_original):
      return lambda x, negative_slope=0.01: plugin._PRIM.bind(  # pylint: disable=protected-access
          x, negative_slope=float(negative_slope))

    return [dataclasses.replace(spec, make_value=make_value)
            if isinstance(spec, MonkeyPatchSpec) else spec for spec in original()]

  return binding_specs


@contextlib.contextmanager
def patched() -> Iterator[None]:
  """Applies the fixes (see the module docstring) for the duration of a conversion."""
  import onnx_ir  # pylint: disable=import-outside-toplevel
  from jax.interpreters import batching  # pylint: disable=import-outside-toplevel
  from jax2onnx.plugins import plugin_system  # pylint: disable=import-outside-toplevel
  from jax2onnx.plugins.jax.lax import pad  # pylint: disable=import-outside-toplevel
  from jax2onnx.plugins.jax.nn import leaky_relu  # pylint: disable=import-outside-toplevel
  from jax2onnx.plugins.jax.numpy import linalg_inv  # pylint: disable=import-outside-toplevel

  plugin_system.import_all_plugins()
  replacements = [(pad, "ir", _ir_with_symbolic_shapes(onnx_ir)),
                  (linalg_inv, "int", _Int),
                  (leaky_relu.LeakyReluPlugin, "binding_specs",
                   _leaky_relu_binding_specs(leaky_relu.LeakyReluPlugin))]
  with_not_mapped = _batching_with_not_mapped()
  for name, module in list(sys.modules.items()):
    if name.startswith("jax2onnx.") and getattr(module, "batching", None) is batching:
      replacements.append((module, "batching", with_not_mapped))
  missing = object()
  saved = [(owner, attribute, owner.__dict__.get(attribute, missing))
           for owner, attribute, _ in replacements]
  try:
    for owner, attribute, value in replacements:
      setattr(owner, attribute, value)
    yield
  finally:
    for owner, attribute, value in reversed(saved):
      if value is missing:
        delattr(owner, attribute)
      else:
        setattr(owner, attribute, value)
