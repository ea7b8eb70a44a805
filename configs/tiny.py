"""A 64x64 configuration for CPU tests and demos: the paper's model, shrunk.

Same architecture and code paths as ``vox256`` (four scales, both codebooks, every
loss), with narrow layers, small codebooks and one transformer layer per codebook.
"""

import ml_collections

from mcc_jax.configs import vox256


def get_config() -> ml_collections.ConfigDict:
  config = vox256.get_config()
  config.image_size = 64
  model = config.model
  model.num_keypoints = 10
  model.keypoint_detector.update(block_expansion=8, max_features=64, num_blocks=3)
  model.dense_motion.update(block_expansion=8, max_features=64, num_blocks=3)
  model.generator.update(
      nf=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, latent_channels=64,
      motion_codebook_size=64, motion_code_dim=32, motion_layers=1,
      appearance_codebook_size=64, appearance_code_dim=64, appearance_layers=1, num_heads=4)
  model.discriminator.update(ndf=16, num_layers=3)
  # Procedural heads render in memory: no download, no root.
  config.datasets.name = "synthetic"
  config.batch_size = 4
  config.total_steps = 20
  config.model.batch_norm_group_size = 2
  # The offline perceptual network: nothing to download or convert. At 64x64 the 1/8
  # pyramid level (8x8) is too small for VGG's four poolings; the others remain.
  config.losses.perceptual_network = "vgg16_lpips"
  config.losses.perceptual_scales = (1.0, 0.5, 0.25)
  config.losses.discriminator_start_step = 10
  config.checkpoint.every_steps = 10
  config.log_every_steps = 5
  config.image_every_steps = 10
  config.eval_every_steps = 0
  config.eval_batch_size = 4
  config.eval_max_batches = 2
  return config
