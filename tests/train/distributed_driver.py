"""One process of the two-process training test (run by trainer_test.py, not by pytest).

    python distributed_driver.py PROCESS_ID PORT WORKDIR
"""

import os
import sys

# Four devices per process; the lowest LLVM optimisation level, as in the test session.
os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=4 "
                           "--xla_backend_optimization_level=0")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

sys.path.insert(0, os.path.dirname(__file__))
import training_data  # noqa: E402
import trainer_test  # noqa: E402

from mcc_jax.train import trainer  # noqa: E402


def main():
  process_id, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
  config = trainer_test.small_config(total_steps=4)
  config.distributed.num_processes = 2
  config.distributed.process_id = process_id
  config.distributed.coordinator_address = f"localhost:{port}"
  trainer.train_and_evaluate(config, workdir,
                             batches=training_data.batches(config, process_id, 2))


if __name__ == "__main__":
  main()
