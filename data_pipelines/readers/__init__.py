"""Per-video readers and frame utilities shared by the dataset kinds."""
