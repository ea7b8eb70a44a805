"""Hand-made training batches for the trainer tests that need data no pipeline makes.

The trainer reads the real pipeline everywhere else; these batches serve the tests of
one compiled step (fixed inputs) and the non-finite test (a NaN no file can hold).
"""

import numpy as np


def global_batch(step: int, batch_size: int, image_size: int) -> dict[str, np.ndarray]:
  """Smooth random uint8 frames for step ``step`` (source and driving differ a little)."""
  rng = np.random.default_rng(1000 + step)
  coarse = rng.uniform(0, 255, (batch_size, 8, 8, 3))
  repeat = image_size // 8
  source = np.kron(coarse, np.ones((1, repeat, repeat, 1)))
  shift = rng.integers(1, 4)
  driving = np.roll(source, shift, axis=2) + 6.0 * rng.normal(size=source.shape)
  return {"source": np.round(source).astype(np.uint8),
          "driving": np.clip(np.round(driving), 0, 255).astype(np.uint8)}


def batches_with_nan(config, nan_at_step: int):
  """``batches(start_step)`` as ``train_and_evaluate`` takes it, float32 frames in [0, 1]
  (the pipeline's form with colour jitter on), with a NaN in step ``nan_at_step``'s."""

  def stream(start_step):
    step = start_step
    while True:
      batch = {k: v.astype(np.float32) / 255.0 for k, v in
               global_batch(step, config.batch_size, config.model.image_size).items()}
      if step + 1 == nan_at_step:
        batch["driving"][0, 0, 0, 0] = np.nan
      yield batch
      step += 1

  return stream
