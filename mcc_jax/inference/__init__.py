"""Using a trained model: loading it from a workdir or a model checkpoint, and animating
a source image with a driving video (FOMM-style relative or absolute motion).

* :mod:`~mcc_jax.inference.model_loading`: :func:`load_model` returns the networks, the
  configuration and the weights of an ``mcc-jax train`` workdir or an ``mcc-jax
  convert-official`` checkpoint, checking that they match.
* :mod:`~mcc_jax.inference.animation`: :class:`Animator`, one jit-compiled batched
  function from (source, driving frames) to generated frames.
* :mod:`~mcc_jax.inference.best_frame`: the driving frame most aligned with the source.
* :mod:`~mcc_jax.inference.video_animation`: :func:`animate_video`, from a source image
  file and a driving video file to an mp4 (streamed), with any animator.
"""

from mcc_jax.inference.animation import AnimatedBatch
from mcc_jax.inference.animation import Animator
from mcc_jax.inference.best_frame import find_best_frame
from mcc_jax.inference.model_loading import CheckpointMismatchError
from mcc_jax.inference.model_loading import LoadedModel
from mcc_jax.inference.model_loading import load_model
from mcc_jax.inference.video_animation import AnimationError
from mcc_jax.inference.video_animation import AnimationOptions
from mcc_jax.inference.video_animation import animate_video

__all__ = [
    "AnimatedBatch",
    "AnimationError",
    "AnimationOptions",
    "Animator",
    "CheckpointMismatchError",
    "LoadedModel",
    "animate_video",
    "find_best_frame",
    "load_model",
]
