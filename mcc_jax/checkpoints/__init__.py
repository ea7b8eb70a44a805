"""What a model's weights are stored in: training runs and converted model files.

* :mod:`mcc_jax.checkpoints.training_runs`: the checkpoints ``mcc-jax train`` keeps in
  ``WORKDIR/checkpoints/<step>/`` (the whole training state and the configuration);
  the trainer saves and resumes them, and :func:`restore_params` reads the weights.
* :mod:`mcc_jax.checkpoints.model_files`: a directory of the networks' variables and
  their configuration, what ``mcc-jax convert-official`` writes and inference loads.
"""

from mcc_jax.checkpoints.model_files import load_model_checkpoint
from mcc_jax.checkpoints.model_files import save_model_checkpoint
from mcc_jax.checkpoints.training_runs import checkpoint_directory
from mcc_jax.checkpoints.training_runs import latest_step
from mcc_jax.checkpoints.training_runs import restore_config
from mcc_jax.checkpoints.training_runs import restore_params

__all__ = [
    "checkpoint_directory",
    "latest_step",
    "load_model_checkpoint",
    "restore_config",
    "restore_params",
    "save_model_checkpoint",
]
