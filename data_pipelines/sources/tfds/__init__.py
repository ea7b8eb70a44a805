"""The ``tfds`` dataset kind: TFDS records of a converted folder tree."""
