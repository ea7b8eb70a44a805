"""Ground truth of a reenactment: one synthetic person rendered in another video's poses.

A real dataset cannot say what person A would look like performing person B's motion;
the procedural heads can, because a frame is a pure function of (identity, pose). Two
ways to transfer a motion M, matching the two ways the model is driven:

* **absolute**: A in M's pose of each frame, ``render(A, M.pose(t))``. The model's
  counterpart moves the source keypoints to the driving keypoints.
* **relative**: A's own first pose moved by M's change since M's first frame
  (:func:`relative_pose`), ``render(A, relative_pose(A.pose(0), M.pose(0), M.pose(t)))``.
  The model's counterpart moves the source keypoints by the driving keypoints'
  displacement from the first driving frame (FOMM's relative motion).

How the pose parameters compose in relative motion, parameter by parameter (``a``: the
source's first pose, ``m0``: the driving video's first pose, ``m``: its pose at frame t):

* translation (image units, half-widths): ``a + (m - m0)``, each axis;
* roll (radians): ``a + (m - m0)``;
* scale (multiplicative): ``a * m / m0``;
* yaw (the renderer's [-1, 1] turn): ``clip(a + (m - m0), -1, 1)``;
* eye openness and mouth opening ([0, 1]): ``clip(a + (m - m0), 0, 1)``.

The model's relative motion with ``adapt_scale`` also multiplies the keypoint
displacements by the ratio of the two keypoint hulls' sizes; the ground truth does not
scale the displacement (the heads' sizes differ by a few per cent between identities).
"""

from __future__ import annotations

import numpy as np

from mcc_jax.data_pipelines.sources.synthetic.heads import HeadPose, render_head

MOTIONS = ("absolute", "relative")


def relative_pose(source_first: HeadPose, driving_first: HeadPose,
                  driving: HeadPose) -> HeadPose:
  """The source's first pose moved by the driving video's change since its first frame.

  Args:
    source_first: the pose of the source image (the source video's frame 0).
    driving_first: the pose of the driving video's anchor frame (its frame 0).
    driving: the driving video's pose at the frame to transfer.

  Returns:
    The composed `HeadPose` (see the module docstring for each parameter).
  """
  change = lambda name: getattr(driving, name) - getattr(driving_first, name)
  return HeadPose(
      translation=tuple(float(s + d - d0) for s, d, d0 in zip(
          source_first.translation, driving.translation, driving_first.translation)),
      roll=float(source_first.roll + change("roll")),
      scale=float(source_first.scale * driving.scale / driving_first.scale),
      yaw=float(np.clip(source_first.yaw + change("yaw"), -1.0, 1.0)),
      eye_openness=float(np.clip(source_first.eye_openness + change("eye_openness"), 0.0, 1.0)),
      mouth_opening=float(np.clip(source_first.mouth_opening + change("mouth_opening"),
                                  0.0, 1.0)))


def reenactment_target(source_video, driving_video, frames, motion: str) -> np.ndarray:
  """What the source video's person looks like performing the driving video's motion.

  Args:
    source_video: the `SyntheticVideo` whose frame 0 is the source image (its identity
      and, for relative motion, its first pose are used).
    driving_video: the `SyntheticVideo` whose motion drives.
    frames: driving frame indices.
    motion: ``'absolute'`` or ``'relative'`` (see the module docstring).

  Returns:
    uint8 ``(len(frames), S, S, 3)`` at the source video's size.

  Raises:
    ValueError: for another motion.
  """
  if motion not in MOTIONS:
    raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
  first = driving_video.motion.pose(0)
  source_first = source_video.motion.pose(0)

  def pose(frame):
    driving = driving_video.motion.pose(int(frame))
    return driving if motion == "absolute" else relative_pose(source_first, first, driving)

  return np.stack([render_head(source_video.identity, pose(t), source_video.image_size)
                   for t in frames])
