"""Which cluster a process runs in, as the trainer decides whether to start jax.distributed.

The start-up itself is rehearsed for real in tests/train/rehearsal_test.py (two local
processes that find each other through SLURM's variables alone).
"""

import pytest

from mcc_jax.train import distributed

_CLUSTER_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
                      "SLURM_LOCALID", "OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE",
                      "TPU_WORKER_HOSTNAMES", "TPU_PROCESS_ADDRESSES", "KUBERNETES_SERVICE_HOST")


@pytest.fixture
def clean_environment(monkeypatch):
  for name in _CLUSTER_VARIABLES:
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


def _slurm(monkeypatch, tasks):
  for name, value in (("SLURM_JOB_ID", "4242"), ("SLURM_STEP_NODELIST", "node[001-002]"),
                      ("SLURM_NTASKS", str(tasks)), ("SLURM_PROCID", "0"),
                      ("SLURM_LOCALID", "0")):
    monkeypatch.setenv(name, value)


def test_a_single_machine_is_no_cluster(clean_environment):
  assert distributed.detected_cluster() is None


def test_a_slurm_step_with_several_tasks_is_detected(clean_environment):
  _slurm(clean_environment, tasks=4)
  assert distributed.detected_cluster() == "slurm"


def test_a_slurm_job_with_one_task_needs_no_distributed_start(clean_environment):
  _slurm(clean_environment, tasks=1)
  assert distributed.detected_cluster() is None


def test_open_mpi_is_detected(clean_environment):
  clean_environment.setenv("OMPI_MCA_orte_hnp_uri", "1531576320.0;tcp://10.0.0.1:34911")
  clean_environment.setenv("OMPI_COMM_WORLD_SIZE", "2")
  assert distributed.detected_cluster() == "ompi"


def test_the_fallback_reads_the_same_variables(clean_environment):
  _slurm(clean_environment, tasks=2)
  assert distributed._cluster_from_environment() == "slurm"  # pylint: disable=protected-access
  clean_environment.setenv("SLURM_NTASKS", "1")
  assert distributed._cluster_from_environment() is None  # pylint: disable=protected-access
