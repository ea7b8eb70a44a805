"""Procedurally rendered talking heads: an identity, a motion, and a numpy renderer.

An identity fixes what stays constant for a person: face shape (width, height, jaw
taper), skin, hair, eye, lip and shirt colours, hair volume and hairline, skin
texture, eye spacing, mouth width and the background. A motion fixes how one video
moves: smooth head translation, in-plane rotation, scale and yaw, eye blinks and mouth
opening, all pure functions of the frame index, so any single frame renders on its
own. Shapes are drawn with anti-aliased edges in resolution-independent coordinates,
so the same head renders at 64x64 or 512x512.

Coordinates: image x to the right and y downwards, both in [-1, 1]; face-local
coordinates ``(u, v)`` follow the head (``v`` grows towards the chin).
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Skin tones (linear-ish RGB in [0, 1]) from light to dark, mixed per identity.
_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.87, 0.67, 0.53], [0.74, 0.53, 0.38],
                        [0.55, 0.38, 0.26], [0.36, 0.24, 0.16]], np.float32)
_HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.30, 0.18, 0.09], [0.55, 0.36, 0.18],
                          [0.85, 0.70, 0.40], [0.55, 0.55, 0.55], [0.60, 0.20, 0.08]],
                         np.float32)
_EYE_COLOURS = np.array([[0.25, 0.15, 0.07], [0.20, 0.40, 0.65], [0.30, 0.50, 0.30],
                         [0.45, 0.35, 0.20]], np.float32)
_TEXTURE_WAVES = 6
# Face-local units per image half-width at rest: the head fills the frame about as
# much as in the video-preprocessing crops.
_HEAD_SCALE = 1.5


@dataclasses.dataclass(frozen=True)
class HeadIdentity:
  """What a synthetic person looks like; all lengths in face-local units."""
  face_radii: tuple[float, float]
  jaw_taper: float
  skin: np.ndarray
  hair: np.ndarray
  hair_volume: float
  hairline: float
  eye_colour: np.ndarray
  lip_colour: np.ndarray
  shirt: np.ndarray
  eye_spacing: float
  mouth_width: float
  background: np.ndarray  # (2, 3): the two colours of the background gradient.
  background_stripes: tuple[float, float]  # (angle in radians, frequency).
  texture_waves: np.ndarray  # (K, 4): frequency u, frequency v, phase, amplitude.


@dataclasses.dataclass(frozen=True)
class HeadPose:
  """The state of a head in one frame."""
  translation: tuple[float, float]
  roll: float
  scale: float
  yaw: float
  eye_openness: float
  mouth_opening: float


def sample_identity(rng: np.random.Generator) -> HeadIdentity:
  """Draws a random person.

  Args:
    rng: the generator; the identity is a pure function of its state.

  Returns:
    A `HeadIdentity`.
  """
  def mix(palette: np.ndarray, jitter: float) -> np.ndarray:
    weights = rng.dirichlet(np.full(len(palette), 0.3))
    colour = weights @ palette + rng.normal(0.0, jitter, 3)
    return np.clip(colour, 0.02, 0.98).astype(np.float32)

  waves = np.stack([rng.uniform(-18, 18, _TEXTURE_WAVES), rng.uniform(-18, 18, _TEXTURE_WAVES),
                    rng.uniform(0, 2 * np.pi, _TEXTURE_WAVES),
                    rng.uniform(0.005, 0.03, _TEXTURE_WAVES)], axis=1).astype(np.float32)
  return HeadIdentity(
      face_radii=(float(rng.uniform(0.28, 0.36)), float(rng.uniform(0.38, 0.46))),
      jaw_taper=float(rng.uniform(0.05, 0.35)),
      skin=mix(_SKIN_TONES, 0.02),
      hair=mix(_HAIR_COLOURS, 0.03),
      hair_volume=float(rng.uniform(0.02, 0.14)),
      hairline=float(rng.uniform(0.45, 0.68)),
      eye_colour=mix(_EYE_COLOURS, 0.03),
      lip_colour=np.clip(np.array([0.70, 0.30, 0.30]) + rng.normal(0, 0.06, 3),
                         0, 1).astype(np.float32),
      shirt=rng.uniform(0.05, 0.95, 3).astype(np.float32),
      eye_spacing=float(rng.uniform(0.12, 0.17)),
      mouth_width=float(rng.uniform(0.09, 0.14)),
      background=rng.uniform(0.1, 0.95, (2, 3)).astype(np.float32),
      background_stripes=(float(rng.uniform(0, np.pi)), float(rng.uniform(3, 14))),
      texture_waves=waves)


@dataclasses.dataclass(frozen=True)
class HeadMotion:
  """How the head of one video moves; `pose` gives the state of any frame.

  Each continuous channel (x, y, roll, scale, yaw, mouth) is a sum of two sinusoids;
  ``waves[c]`` holds their (amplitude, frequency in cycles per frame, phase).
  """
  offset: tuple[float, float]
  waves: np.ndarray  # (6, 2, 3)
  blink_frames: np.ndarray  # frame indices at which the eyes are shut.

  def pose(self, frame: int) -> HeadPose:
    """Returns the pose at a frame index.

    Args:
      frame: frame index (any integer; the motion is defined everywhere).

    Returns:
      The `HeadPose` of that frame.
    """
    amplitude, frequency, phase = np.moveaxis(self.waves, -1, 0)
    channels = np.sum(amplitude * np.sin(2 * np.pi * frequency * frame + phase), axis=1)
    x, y, roll, scale, yaw, mouth = channels.tolist()
    # A blink closes the eyes over about five frames.
    distance = np.min(np.abs(self.blink_frames - frame), initial=np.inf)
    eye_openness = float(np.clip(distance / 2.5, 0.0, 1.0))
    return HeadPose(translation=(self.offset[0] + x, self.offset[1] + y), roll=roll,
                    scale=float(_HEAD_SCALE * np.exp(scale)), yaw=float(np.clip(yaw, -1, 1)),
                    eye_openness=eye_openness,
                    mouth_opening=float(np.clip(0.5 + mouth, 0.0, 1.0)))


def sample_motion(rng: np.random.Generator, num_frames: int) -> HeadMotion:
  """Draws a random motion for a video.

  Args:
    rng: the generator; the motion is a pure function of its state.
    num_frames: video length; blinks are placed within it (about one per 40 frames).

  Returns:
    A `HeadMotion`.
  """
  # Per channel: amplitude of each of the two waves and their frequency range.
  amplitudes = np.array([0.07, 0.05, 0.15, 0.06, 0.5, 0.35])
  slowest = np.array([0.005, 0.005, 0.005, 0.005, 0.005, 0.05])
  fastest = np.array([0.03, 0.03, 0.04, 0.03, 0.03, 0.2])
  waves = np.empty((6, 2, 3))
  waves[..., 0] = amplitudes[:, None] * rng.uniform(0.3, 1.0, (6, 2))
  waves[..., 1] = rng.uniform(slowest[:, None], fastest[:, None], (6, 2))
  waves[..., 2] = rng.uniform(0, 2 * np.pi, (6, 2))
  num_blinks = rng.poisson(max(num_frames, 1) / 40.0)
  blink_frames = np.sort(rng.integers(0, max(num_frames, 1), num_blinks)).astype(np.float32)
  offset = (float(rng.uniform(-0.05, 0.05)), float(rng.uniform(0.0, 0.08)))
  return HeadMotion(offset=offset, waves=waves.astype(np.float32),
                    blink_frames=blink_frames)


def _ellipse_distance(u, v, centre, radii):
  """Approximate signed distance to an ellipse (negative inside), face-local units."""
  du, dv = u - centre[0], v - centre[1]
  a2, b2 = radii[0] ** 2, radii[1] ** 2
  level = du * du / a2 + dv * dv / b2 - 1.0
  gradient = 2.0 * np.sqrt((du / a2) ** 2 + (dv / b2) ** 2) + 1e-6
  return level / gradient


def _coverage(distance, pixel):
  """Anti-aliased coverage of a shape from its signed distance and the pixel size."""
  return np.clip(0.5 - distance / pixel, 0.0, 1.0)


def _paint(image, alpha, colour):
  alpha = alpha[..., None]
  image *= 1.0 - alpha
  image += alpha * colour
  return image


class _Canvas:
  """An image with the face-local coordinates of its pixels.

  Small features are drawn only inside their bounding box, which keeps rendering at
  256x256 cheap.
  """

  def __init__(self, image_size: int, pose: HeadPose):
    """Computes the face-local coordinates of every pixel.

    Args:
      image_size: side of the image in pixels.
      pose: the head pose of the frame.
    """
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size * 2.0 - 1.0
    self.y, self.x = np.meshgrid(axis, axis, indexing="ij")
    self.size = image_size
    self.pose = pose
    self.cos, self.sin = np.cos(pose.roll), np.sin(pose.roll)
    dx, dy = self.x - pose.translation[0], self.y - pose.translation[1]
    self.u = ((self.cos * dx + self.sin * dy) / pose.scale).astype(np.float32)
    self.v = ((-self.sin * dx + self.cos * dy) / pose.scale).astype(np.float32)
    # Size of a pixel in face-local units, the width of anti-aliased edges.
    self.pixel = 2.0 / image_size / pose.scale

  def region(self, centre: tuple[float, float], extent: float) -> tuple[slice, slice]:
    """Pixel rows and columns that can see a disc of face-local radius `extent`.

    Args:
      centre: disc centre in face-local coordinates.
      extent: disc radius in face-local units.

    Returns:
      ``(rows, columns)`` slices of the image.
    """
    cx = self.pose.translation[0] + self.pose.scale * (self.cos * centre[0]
                                                       - self.sin * centre[1])
    cy = self.pose.translation[1] + self.pose.scale * (self.sin * centre[0]
                                                       + self.cos * centre[1])
    half = extent * self.pose.scale + 2.0 / self.size

    def span(c):
      low = int(np.floor((c - half + 1.0) / 2.0 * self.size))
      high = int(np.ceil((c + half + 1.0) / 2.0 * self.size))
      return slice(min(max(low, 0), self.size), min(max(high, 0), self.size))

    return span(cy), span(cx)


def render_head(identity: HeadIdentity, pose: HeadPose, image_size: int) -> np.ndarray:
  """Renders one frame.

  Args:
    identity: the person.
    pose: head pose, eyes and mouth of the frame.
    image_size: side of the square frame in pixels.

  Returns:
    uint8 ``(image_size, image_size, 3)`` RGB frame.
  """
  canvas = _Canvas(image_size, pose)
  x, y, pixel = canvas.x, canvas.y, canvas.pixel

  # Static background: a vertical gradient with soft stripes.
  angle, frequency = identity.background_stripes
  ramp = ((y + 1.0) / 2.0)[..., None]
  image = identity.background[0] * (1.0 - ramp) + identity.background[1] * ramp
  stripes = 0.06 * np.sin(frequency * (x * np.cos(angle) + y * np.sin(angle)))
  image = (image * (1.0 + stripes[..., None])).astype(np.float32)

  rx, ry = identity.face_radii
  shift = pose.yaw * rx * 0.35  # Features slide sideways as the head turns.
  volume = identity.hair_volume

  def paint_ellipse(centre, radii, colour, strength=1.0, edge=1.0, clip=None):
    rows, cols = canvas.region(centre, max(radii) + edge * pixel)
    u, v = canvas.u[rows, cols], canvas.v[rows, cols]
    alpha = strength * _coverage(_ellipse_distance(u, v, centre, radii), pixel * edge)
    if clip is not None:
      alpha = alpha * clip(u, v)
    _paint(image[rows, cols], alpha, colour)

  # Shirt and neck, then the hair behind the head and the ears.
  u, v = canvas.u, canvas.v
  shirt = _ellipse_distance(u, v, (0.0, ry + 0.55), (rx * 2.2, 0.45))
  _paint(image, _coverage(shirt, pixel), identity.shirt)
  paint_ellipse((shift * 0.3, ry * 0.9), (rx * 0.5, ry * 0.55), identity.skin * 0.8)
  paint_ellipse((0.0, -0.06), (rx + volume, ry * 0.9 + volume), identity.hair,
                clip=lambda u, v: _coverage(v - ry * 0.3, pixel))
  for side in (-1.0, 1.0):
    paint_ellipse((side * rx * (1.0 - 0.15 * side * pose.yaw) - shift * 0.3, 0.02),
                  (0.05, 0.09), identity.skin * 0.85)

  # Face: the jaw narrows it towards the chin; light comes from the front and side.
  rows, cols = canvas.region((0.0, 0.0), max(rx, ry) + pixel)
  u, v, face_image = canvas.u[rows, cols], canvas.v[rows, cols], image[rows, cols]
  taper = 1.0 - identity.jaw_taper * np.clip(v / ry, 0.0, 1.0) ** 2
  face_alpha = _coverage(_ellipse_distance(u / taper, v, (0.0, 0.0), (rx, ry)), pixel)
  normal_z = np.sqrt(np.clip(1.0 - (u / (rx * taper)) ** 2 - (v / ry) ** 2, 0.0, 1.0))
  light = 0.7 + 0.3 * normal_z - 0.12 * (u / rx + pose.yaw * 0.6)
  for fu, fv, phase, amplitude in identity.texture_waves:
    light += amplitude * np.sin(fu * u + fv * v + phase)
  _paint(face_image, face_alpha, identity.skin * np.clip(light, 0.3, 1.2)[..., None])
  # Fringe: hair covers the face above a curved hairline.
  hairline = -ry * identity.hairline + 0.12 * (u / rx) ** 2
  _paint(face_image, face_alpha * _coverage(v - hairline, pixel), identity.hair)

  # Nose shadow.
  paint_ellipse((shift * 1.2, 0.08), (0.035, 0.09), identity.skin * 0.6, strength=0.35,
                edge=6.0)

  # Eyes with brows; blinks shrink the eye opening to a lash line.
  for side in (-1.0, 1.0):
    centre = (side * identity.eye_spacing + shift, -0.06)
    width = 0.065 * (1.0 - 0.3 * side * pose.yaw)
    height = 0.04 * pose.eye_openness
    paint_ellipse((centre[0], centre[1] - 0.075), (width * 1.2, 0.014),
                  identity.hair * 0.7)
    paint_ellipse(centre, (width * 1.05, max(height, 0.006) + 0.006),
                  np.float32([0.1, 0.07, 0.06]))
    if height > 0.002:
      def inside_eye(u, v, centre=centre, width=width, height=height):
        return _coverage(_ellipse_distance(u, v, centre, (width, height)), pixel)
      paint_ellipse(centre, (width, height), np.float32([0.95, 0.94, 0.92]))
      iris_centre = (centre[0] + pose.yaw * 0.02, centre[1])
      paint_ellipse(iris_centre, (0.028, 0.028), identity.eye_colour, clip=inside_eye)
      paint_ellipse(iris_centre, (0.012, 0.012), np.float32([0.02] * 3), clip=inside_eye)

  # Mouth: lips around a dark opening with a row of upper teeth.
  mouth_centre = (shift * 0.9, 0.25)
  opening = 0.012 + 0.07 * pose.mouth_opening
  width = identity.mouth_width
  paint_ellipse(mouth_centre, (width, opening + 0.022), identity.lip_colour)

  def inside_mouth(u, v):
    return _coverage(_ellipse_distance(u, v, mouth_centre, (width * 0.85, opening)), pixel)

  paint_ellipse(mouth_centre, (width * 0.85, opening), np.float32([0.25, 0.05, 0.06]))
  paint_ellipse(mouth_centre, (width * 0.85, opening), np.float32([0.92, 0.90, 0.85]),
                clip=lambda u, v: inside_mouth(u, v) * _coverage(
                    v - (mouth_centre[1] - opening * 0.35), pixel))
  return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
