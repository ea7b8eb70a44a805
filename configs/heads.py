"""Train the tiny model on procedural heads: many people, tested on people it never saw.

The ``synthetic`` dataset renders talking heads on demand (``data_pipelines/sources/
synthetic``): 256 train identities and 8 test identities, disjoint, two 64-frame videos
each. Because a frame is a pure function of (identity, pose), what a test person would
look like in another person's motion can be rendered exactly, so cross-identity
reenactment has a ground truth (``benchmarks/learn_synthetic.py``, ``mcc-jax evaluate
--mode cross_identity``). The model and objective are ``sample``'s (the paper's model at
64x64, every loss term), with the same short-run optimiser settings.

    mcc-jax train --config=heads --workdir=runs/heads
"""

import ml_collections

from mcc_jax.configs import sample


def get_config() -> ml_collections.ConfigDict:
  config = sample.get_config()
  config.datasets.name = "synthetic"
  config.datasets.train_split = "train"
  config.datasets.eval_split = "test"
  config.datasets.id_sampling = True
  config.datasets.synthetic.update(num_train_identities=256, num_test_identities=8,
                                   videos_per_identity=2, num_frames=64)
  config.total_steps = 1400
  config.losses.discriminator_start_step = 300
  config.checkpoint.every_steps = 200
  config.log_every_steps = 50
  config.image_every_steps = 200
  config.eval_every_steps = 200
  config.eval_batch_size = 8
  config.eval_max_batches = 8
  return config
