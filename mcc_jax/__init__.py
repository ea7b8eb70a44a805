"""mcc-jax: multi-scale compensatory codebooks for talking-head video generation, in JAX.

Layers, each importing only from the ones before it:

* ``mcc_jax.ops``: pure functions (warping, vector quantisation, keypoint motion,
  random thin-plate-spline transforms, window partition).
* ``mcc_jax.models``: Flax linen modules.
* ``mcc_jax.losses`` and ``mcc_jax.train``: objectives and the training loop.
* ``mcc_jax.data_pipelines`` (tf.data) and ``mcc_jax.configs`` (``get_config()`` files).

``mcc_jax.ops`` and ``mcc_jax.models`` import without TensorFlow; ``pip install mcc-jax``
installs what they need and nothing more (``mcc_jax.extras`` lists the rest).

In the repository the data pipelines and the configurations sit at the top level
(``data_pipelines/``, ``configs/``); an installed wheel carries them inside this package
(setup.py's ``package_dir``), so that nothing generic lands in site-packages. In a
checkout the repository's root joins this package's search path, so the same names,
``mcc_jax.data_pipelines`` and ``mcc_jax.configs``, import in both.
"""

import pathlib as _pathlib

__version__ = "0.1.0"

_CHECKOUT = _pathlib.Path(__file__).resolve().parent.parent
if (not (_pathlib.Path(__file__).resolve().parent / "data_pipelines").is_dir() and
    (_CHECKOUT / "data_pipelines" / "__init__.py").is_file() and
    (_CHECKOUT / "configs" / "__init__.py").is_file()):
  __path__.append(str(_CHECKOUT))
