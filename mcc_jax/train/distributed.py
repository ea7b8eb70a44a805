"""Joining the other processes of a multi-host run (``jax.distributed``)."""

from __future__ import annotations

import os

import jax
import ml_collections


def maybe_initialize_distributed(config: ml_collections.ConfigDict) -> None:
  """Starts ``jax.distributed`` for multi-process runs.

  With ``config.distributed.num_processes > 1`` the coordinator address and process id
  come from the config; on a Cloud TPU pod slice (several workers in
  ``TPU_WORKER_HOSTNAMES``) JAX detects all three itself.

  Raises:
    ValueError: ``num_processes > 1`` without a coordinator address or process id.
  """
  dist = config.distributed
  if jax.distributed.is_initialized():
    return
  # CPU processes exchange collectives through gloo (GPUs and TPUs use their own).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if dist.num_processes and dist.num_processes > 1:
    if not dist.coordinator_address or dist.process_id is None:
      raise ValueError("config.distributed: num_processes > 1 needs coordinator_address "
                       "(host:port of process 0) and process_id")
    jax.distributed.initialize(coordinator_address=dist.coordinator_address,
                               num_processes=dist.num_processes, process_id=dist.process_id)
  elif len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1:
    jax.distributed.initialize()
