"""What the atmosphere and the sensor do to a rendered image.

- haze and sky: each ground pixel is pulled toward the haze colour by
  1 - exp(-range / visibility); pixels that see no ground are sky;
- motion blur: the mean of shifted copies of the frame along the image motion
  during the exposure (a drone's turn, a slewing gimbal);
- noise: a fresh-looking Gaussian noise frame each time, cut at a random offset
  from one larger field made once (generating 2.8 M normals per frame would
  cost more than the whole render); a thermal core adds its fixed pattern;
- brightness drift: auto exposure (or a thermal core's AGC) hunting slowly.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim_hw.camera.geometry import View

HAZE_VISIBLE = 0.02  # below this haze weight a row is left alone (about 3 grey levels)
NOISE_MARGIN = 32  # px of spare noise field on each side: 65 x 65 offsets
MAX_BLUR_TAPS = 6
HAZE_GRID = 8  # px between the points where the haze is worked out exactly


class NoiseField:
    """Signed integer noise, added with saturation to uint8 frames; larger than the frame by
    `margin` on each side, so that each frame can take it from another offset."""

    def __init__(self, field: np.ndarray, margin: int):
        field = np.round(field)
        # Two unsigned halves: cv2.add then cv2.subtract saturate exactly as a sensor clips.
        self._positive = np.clip(field, 0, 255).astype(np.uint8)
        self._negative = np.clip(-field, 0, 255).astype(np.uint8)
        self._margin = margin
        self._shape = (field.shape[0] - 2 * margin, field.shape[1] - 2 * margin)

    def apply(self, image: np.ndarray, rng=None) -> None:
        """Add the noise in place; `rng` picks the offset (None: the middle, a fixed pattern)."""
        height, width = self._shape
        if rng is None:
            dy = dx = self._margin
        else:
            dy, dx = (int(k) for k in rng.integers(0, 2 * self._margin + 1, 2))
        window = (slice(dy, dy + height), slice(dx, dx + width))
        cv2.add(image, self._positive[window], dst=image)
        cv2.subtract(image, self._negative[window], dst=image)


def gaussian_noise(shape: tuple[int, ...], sigma: float, rng) -> NoiseField:
    """Temporal noise: zero-mean Gaussian, a new offset each frame."""
    height, width = shape[:2]
    size = (height + 2 * NOISE_MARGIN, width + 2 * NOISE_MARGIN, *shape[2:])
    return NoiseField(rng.normal(0.0, sigma, size), NOISE_MARGIN)


def thermal_fixed_pattern(shape: tuple[int, int], sigma: float, rng) -> NoiseField:
    """A microbolometer's residual non-uniformity: column stripes and pixel offsets."""
    columns = rng.normal(0.0, sigma, (1, shape[1]))
    pixels = rng.normal(0.0, 0.6 * sigma, shape)
    return NoiseField(columns + pixels, 0)


def motion_blur(image: np.ndarray, streak: tuple[float, float]) -> np.ndarray:
    """The frame smeared along `streak` (dx, dy px): the mean of copies shifted along it."""
    dx, dy = streak
    length = math.hypot(dx, dy)
    if not math.isfinite(length) or length < 0.75:
        return image
    length = min(length, 4.0 * MAX_BLUR_TAPS)  # a runaway pose is no reason to smear forever
    dx, dy = dx * length / math.hypot(dx, dy), dy * length / math.hypot(dx, dy)
    taps = min(MAX_BLUR_TAPS, math.ceil(length) + 1)
    reach = math.ceil(max(abs(dx), abs(dy)) / 2) + 1
    padded = cv2.copyMakeBorder(image, reach, reach, reach, reach, cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    mean = None
    for k in range(taps):
        fraction = k / (taps - 1) - 0.5
        sx, sy = round(fraction * dx), round(fraction * dy)
        shifted = padded[reach + sy:reach + sy + height, reach + sx:reach + sx + width]  # fmt: skip
        if mean is None:
            mean = shifted.copy()
        else:  # running mean: the k-th copy weighs 1 / (k + 1)
            mean = cv2.addWeighted(mean, k / (k + 1), shifted, 1 / (k + 1), 0.0)
    return mean


def brightness_gain(t: float, amplitude: float, phases: tuple[float, float]) -> float:
    """1 + a slow wander of about `amplitude` (two incommensurate periods, 17 s and 6 s)."""
    wander = 0.7 * math.sin(2 * math.pi * t / 17.3 + phases[0]) \
        + 0.3 * math.sin(2 * math.pi * t / 5.9 + phases[1])  # fmt: skip
    return 1.0 + amplitude * wander


def apply_atmosphere(image: np.ndarray, view: View, scale: float, visibility_m: float,
                     haze, sky=None) -> None:  # fmt: skip
    """Pull distant ground toward `haze` and paint the sky, in place, on the rows where it
    shows. The sky is `haze` too unless `sky` differs (a thermal sky is colder than the
    air). `scale`: image size over the camera's."""
    rows = _rows_needing_haze(view, image.shape, scale, visibility_m)
    if rows is None:
        return
    top, bottom = rows
    band = image[top:bottom]
    weight = _haze_weight(view, band.shape, top, scale, visibility_m)
    colour = np.empty_like(band)
    colour[:] = haze
    cv2.blendLinear(band, colour, 1.0 - weight, weight, dst=band)
    if sky is not None:
        u = (np.arange(band.shape[1]) + 0.5) / scale
        v = (np.arange(top, bottom) + 0.5) / scale
        band[view.inverse_depth(u[None, :], v[:, None]) <= 0] = sky


def _haze_weight(view: View, shape, top: int, scale: float, visibility_m: float) -> np.ndarray:
    """1 - exp(-range / visibility) over a band of rows (1 for sky), as float32.

    Worked out on a grid every HAZE_GRID px and enlarged: the weight is smooth,
    and where the range runs to infinity at the horizon it saturates at 1.
    """
    height, width = shape[:2]
    columns, rows = math.ceil(width / HAZE_GRID), math.ceil(height / HAZE_GRID)
    # Where cv2.resize takes its samples to lie: sample j at (j + 0.5) * width / columns.
    x = (np.arange(columns) + 0.5) * width / columns
    y = (np.arange(rows) + 0.5) * height / rows + top
    u, v = np.meshgrid(x / scale, y / scale)
    ranges = view.ground_range(u.ravel(), v.ravel()).reshape(u.shape)
    coarse = (1.0 - np.exp(-ranges / visibility_m)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _rows_needing_haze(view: View, shape, scale: float, visibility_m: float):
    """(first, end) of the rows where the haze reaches HAZE_VISIBLE or sky shows, or None.

    Along a row 1 / depth is linear, so its farthest ground (or sky) is at one of
    its ends: testing both ends of every row is exact.
    """
    height, width = shape[:2]
    v = (np.arange(height) + 0.5) / scale
    ends = [np.full(height, 0.5 / scale), np.full(height, (width - 0.5) / scale)]
    needed = np.zeros(height, bool)
    for u in ends:
        ranges = view.ground_range(u, v)
        needed |= 1.0 - np.exp(-ranges / visibility_m) >= HAZE_VISIBLE
    if not needed.any():
        return None
    index = np.flatnonzero(needed)
    return int(index[0]), int(index[-1]) + 1
