"""Deterministic training batches for the trainer tests: the batch of step s depends on s only.

The real pipeline's stream is seeded per run; these batches make "6 steps straight"
and "3 steps + resume + 3 steps" see exactly the same data, and let several processes
each feed their slice of the same global batch.
"""

import numpy as np


def global_batch(step: int, batch_size: int, image_size: int) -> dict[str, np.ndarray]:
  """Smooth random frames in [-1, 1] for step ``step`` (source and driving differ a little)."""
  rng = np.random.default_rng(1000 + step)
  coarse = rng.uniform(-1, 1, (batch_size, 8, 8, 3))
  repeat = image_size // 8
  source = np.kron(coarse, np.ones((1, repeat, repeat, 1)))
  shift = rng.integers(1, 4)
  driving = np.roll(source, shift, axis=2) + 0.05 * rng.normal(size=source.shape)
  return {"source": source.astype(np.float32),
          "driving": np.clip(driving, -1, 1).astype(np.float32)}


def batches(config, process_index: int = 0, process_count: int = 1, nan_at_step=None):
  """``batches(start_step)`` as ``train_and_evaluate`` takes it: this process's slices."""

  def stream(start_step):
    step = start_step
    per_host = config.batch_size // process_count
    while True:
      batch = global_batch(step, config.batch_size, config.model.image_size)
      if nan_at_step is not None and step + 1 == nan_at_step:
        batch["driving"][0, 0, 0, 0] = np.nan
      yield {k: v[process_index * per_host:(process_index + 1) * per_host]
             for k, v in batch.items()}
      step += 1

  return stream
