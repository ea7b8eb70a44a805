"""Window partition of feature maps into a token grid, and its exact inverse.

The appearance compensation turns a (B, H, W, C) feature map into a coarser
(B, H/p, W/p, p*p*C) grid of tokens, one per non-overlapping p x p window. Inside a
token the window is flattened in ``(p1, p2, c)`` order (row within the window, column
within the window, channel), the order the official model's patch embedding uses, so
that ported linear projections line up.
"""

from __future__ import annotations

import einops
import jax


def window_partition(x: jax.Array, patch: int) -> jax.Array:
  """Splits a map into p x p windows, each flattened into one token.

  Args:
    x: (B, H, W, C) map; H and W must be multiples of ``patch``.
    patch: window side p.

  Returns:
    (B, H/p, W/p, p*p*C) tokens in ``(p1 p2 c)`` order.
  """
  if x.ndim != 4:
    raise ValueError(f"window_partition: expected (B, H, W, C), got shape {x.shape}.")
  _, h, w, _ = x.shape
  if patch < 1 or h % patch or w % patch:
    raise ValueError(
        f"window_partition: the map size ({h}, {w}) must be a multiple of the patch {patch}.")
  return einops.rearrange(x, "b (h p1) (w p2) c -> b h w (p1 p2 c)", p1=patch, p2=patch)


def window_reverse(tokens: jax.Array, patch: int) -> jax.Array:
  """Inverse of :func:`window_partition`.

  Args:
    tokens: (B, h, w, p*p*C) tokens.
    patch: window side p.

  Returns:
    (B, h*p, w*p, C) map.
  """
  if tokens.ndim != 4:
    raise ValueError(f"window_reverse: expected (B, h, w, p*p*C), got shape {tokens.shape}.")
  if tokens.shape[-1] % (patch * patch):
    raise ValueError(
        f"window_reverse: token width {tokens.shape[-1]} is not a multiple of patch^2 = "
        f"{patch * patch}.")
  return einops.rearrange(tokens, "b h w (p1 p2 c) -> b (h p1) (w p2) c", p1=patch, p2=patch)
