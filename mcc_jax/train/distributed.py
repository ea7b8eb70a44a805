"""Joining the other processes of a multi-host run (``jax.distributed``).

A run on several hosts needs ``jax.distributed.initialize()`` in every process before
anything else touches JAX: it connects the processes to a coordinator, without which
the hosts' devices do not form one mesh, orbax's asynchronous checkpointer cannot agree
on when a save is complete and a preemption notice cannot be agreed on.

Where it is called, in order:

1. explicit settings win: ``config.distributed.num_processes > 1`` with
   ``coordinator_address`` and ``process_id`` (any cluster, or none);
2. otherwise, a cluster that JAX can read its settings from: a Cloud TPU VM pod slice
   (made with ``gcloud`` or queued resources: the TPU metadata server), a GKE TPU job
   (``TPU_WORKER_HOSTNAMES``), a SLURM job step with several tasks, an Open MPI job
   (``mpirun``). JAX's own cluster detection is asked, and ``initialize()`` is called
   with no arguments so that it fills them in;
3. otherwise a single process: nothing to start.
"""

from __future__ import annotations

import os

import jax
import ml_collections
from absl import logging

# Environment variables that say, without any network query, that this process is one
# of several in a job of that kind (process counts are checked where the kind has one).
_SINGLE_PROCESS_MARKERS = {
    "slurm": "SLURM_NTASKS",
    "ompi": "OMPI_COMM_WORLD_SIZE",
}


def detected_cluster() -> str | None:
  """The cluster environment JAX detects for this process, or None on a single machine.

  Returns:
    JAX's name for it (``'slurm'``, ``'ompi'``, ``'gcetpu'``, ``'gketpu'``, ``'tpu'``,
    ...). A SLURM step or an Open MPI job with a single task counts as no cluster.
  """
  try:
    from jax._src import clusters  # pylint: disable=import-outside-toplevel
    kinds = [kind for kind in clusters.ClusterEnv._cluster_types  # pylint: disable=protected-access
             if not getattr(kind, "opt_in_only_method", False) and kind.name]
  except (ImportError, AttributeError):  # JAX moved its detection: read the variables.
    return _cluster_from_environment()
  for kind in kinds:
    try:
      present = kind.is_env_present()
    except Exception as error:  # pylint: disable=broad-except  # a probe must not end the run
      logging.warning("cluster detection %s failed: %s", kind.name, error)
      present = False
    if present and _several_processes(kind.name):
      return kind.name
  return None


def _several_processes(kind: str) -> bool:
  marker = _SINGLE_PROCESS_MARKERS.get(kind)
  return marker is None or int(os.environ.get(marker, "2")) > 1


def _cluster_from_environment() -> str | None:
  if all(v in os.environ for v in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID")):
    return "slurm" if _several_processes("slurm") else None
  if "OMPI_MCA_orte_hnp_uri" in os.environ:
    return "ompi" if _several_processes("ompi") else None
  if len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1:
    return "gketpu"
  return None


def maybe_initialize_distributed(config: ml_collections.ConfigDict) -> str | None:
  """Starts ``jax.distributed`` when this process is one of several (see the module docstring).

  Args:
    config: the full configuration (``config.distributed``).

  Returns:
    How the processes were joined: ``'config'`` (explicit settings), the detected
    cluster's name, or None for a single process (or when already initialised).

  Raises:
    ValueError: ``num_processes > 1`` without a coordinator address or process id.
  """
  dist = config.distributed
  if jax.distributed.is_initialized():
    return None
  # CPU processes exchange collectives through gloo (GPUs and TPUs use their own).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if dist.num_processes and dist.num_processes > 1:
    if not dist.coordinator_address or dist.process_id is None:
      raise ValueError("config.distributed: num_processes > 1 needs coordinator_address "
                       "(host:port of process 0) and process_id")
    jax.distributed.initialize(coordinator_address=dist.coordinator_address,
                               num_processes=dist.num_processes, process_id=dist.process_id)
    return "config"
  cluster = detected_cluster()
  if cluster is not None:
    logging.info("joining the other processes of this %s job", cluster)
    jax.distributed.initialize()
  return cluster
