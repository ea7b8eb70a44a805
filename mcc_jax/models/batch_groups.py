"""BatchNorm statistics per group of examples, whatever the number of devices.

The official recipe trains on 4 GPUs with 4 images each, and its BatchNorm layers
(keypoint detector, dense motion network, discriminator) normalise with the statistics
of one GPU's 4 images: its synchronised BatchNorm only synchronises under
``DataParallelWithCallback``, which the DDP launcher never uses. A jitted step over the
global batch of 16 would pool all 16. :func:`grouped_apply` restores the recipe's
arithmetic on any mesh: the batch is cut into groups of ``group_size`` consecutive
examples and the module is vmapped over the groups, so each BatchNorm sees one group.

Running statistics: each group produces its own update; the state keeps their mean
(the official checkpoint keeps GPU 0's). Modules without BatchNorm are unaffected.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def check_group_size(batch_size: int, group_size: int) -> int:
  """The number of groups; ``group_size`` 0 means one group (the whole batch).

  Raises:
    ValueError: when ``group_size`` is negative or does not divide ``batch_size``.
  """
  if group_size < 0:
    raise ValueError(f"model.batch_norm_group_size must be >= 0, got {group_size}")
  if group_size == 0:
    return 1
  if batch_size % group_size:
    raise ValueError(
        f"model.batch_norm_group_size={group_size} does not divide the batch of "
        f"{batch_size} examples; choose a divisor, or 0 for statistics over the whole batch")
  return batch_size // group_size


def _split(x: Any, groups: int) -> Any:
  return jax.tree.map(lambda a: a.reshape((groups, a.shape[0] // groups) + a.shape[1:]), x)


def _merge(x: Any) -> Any:
  return jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), x)


def grouped_apply(module: nn.Module, variables: dict[str, Any], *batched_args: Any,
                  group_size: int, method: Callable | str | None = None,
                  **static_kwargs: Any) -> tuple[Any, dict[str, Any]]:
  """``module.apply`` in training mode, with BatchNorm statistics per group of examples.

  Args:
    module: a Flax module whose outputs are batched along the leading axis.
    variables: ``{'params': ..., 'batch_stats': ...}``.
    *batched_args: arrays (or pytrees of arrays) with the batch on the leading axis.
    group_size: examples per group; 0 = the whole batch (a plain apply).
    method: as in ``module.apply``.
    **static_kwargs: non-batched keyword arguments (e.g. ``train=True``).

  Returns:
    (outputs with the batch on the leading axis, the new ``batch_stats`` collection:
    the mean over groups of each group's updated statistics).
  """
  batch = jax.tree.leaves(batched_args)[0].shape[0]
  groups = check_group_size(batch, group_size)

  def apply(args):
    return module.apply(variables, *args, method=method, mutable=["batch_stats"],
                        **static_kwargs)

  if groups == 1:
    outputs, updates = apply(batched_args)
    return outputs, updates.get("batch_stats", {})
  outputs, updates = jax.vmap(apply)(_split(batched_args, groups))
  stats = jax.tree.map(lambda s: jnp.mean(s, axis=0), updates.get("batch_stats", {}))
  return _merge(outputs), stats
