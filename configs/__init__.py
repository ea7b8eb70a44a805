"""Configurations: ``get_config()`` files for ``--config=configs/<name>.py``.

* ``vox256``: the paper's model and training setup (the official ``options/train.yml``).
* ``tiny``: a 64x64 model small enough for CPU tests and demos.
"""
