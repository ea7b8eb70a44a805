"""The dataset kinds: one module or package per kind."""
