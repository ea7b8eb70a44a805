"""mcc-jax: multi-scale compensatory codebooks for talking-head video generation, in JAX.

Layers, each importing only from the ones before it:

* ``mcc_jax.ops``: pure functions (warping, vector quantisation, keypoint motion,
  random thin-plate-spline transforms, window partition).
* ``mcc_jax.models``: Flax linen modules.
* ``mcc_jax.losses`` and ``mcc_jax.train``: objectives and the training loop.

``mcc_jax.ops`` and ``mcc_jax.models`` import without TensorFlow.
"""

__version__ = "0.1.0"
