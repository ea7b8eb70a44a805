"""Per-video readers and frame utilities, shared by the dataset kinds.

`video` holds the per-video interface (`Video`: ``read_pair``, ``read_all``) and the
in-memory `ArrayVideo`; `video_files` the readers of video-preprocessing's formats;
`frames` image decoding, RGB conversion and resizing. The kinds in
`data_pipelines.sources` import these modules, never the reverse.
"""
