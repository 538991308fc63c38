"""Measuring a warm spot in a thermal frame: its contrast against a ring, its peak, and its
blob cut at half contrast.

The detector finds spots by their contrast against a ring (`band_contrast`); these
functions then say how large the warm thing at a spot is, in pixels, for the size gate
(`blob_box`) and for the class guess (`own_blob_box`, which splits a blob
shared by people side by side among its warm cores).
"""

from __future__ import annotations

import cv2
import numpy as np

CORE_CONTRAST = 0.9  # of a blob's contrast: its warm cores, one per target in a group


def brightest_in_box(image: np.ndarray, x: int, y: int, box) -> tuple[int, int, float]:
    """(x, y, value) of the brightest pixel of the box centred on (x, y): the spot's peak."""
    w, h = box
    x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
    footprint = image[y0 : y + h // 2 + 1, x0 : x + w // 2 + 1]
    row, column = np.unravel_index(int(np.argmax(footprint)), footprint.shape)
    return int(column) + x0, int(row) + y0, float(footprint[row, column])


def blob_box(image: np.ndarray, seed, background: float, reach: tuple[int, int]):
    """(x0, y0, x1, y1) of the warm blob around the seed, cut at half its contrast.

    The blob is looked for within `reach` (x, y) px of the seed. For the size
    gate this is the box and its gap, where the ring's background does not
    reach: a person beside a warm wall or another person stays its own size,
    and what is bigger than the box is cut to it (its contrast against the
    ring, the ratio, already told it is no such target).
    """
    seed_x, seed_y, peak = seed
    height, width = image.shape
    reach_x, reach_y = reach
    x0, x1 = max(0, seed_x - reach_x), min(width, seed_x + reach_x + 1)
    y0, y1 = max(0, seed_y - reach_y), min(height, seed_y + reach_y + 1)
    mask = (image[y0:y1, x0:x1] >= background + 0.5 * (peak - background)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    bx, by, bw, bh, _ = stats[labels[seed_y - y0, seed_x - x0]]
    return float(x0 + bx), float(y0 + by), float(x0 + bx + bw), float(y0 + by + bh)


def own_blob_box(image: np.ndarray, seed, background: float, reach: tuple[int, int]):
    """(x0, y0, x1, y1) of the seed's share of its warm blob (cut at half contrast).

    Where the blob holds several warm cores (parts above CORE_CONTRAST of the
    seed's contrast), as people side by side do, each of its pixels belongs to
    the nearest core, and the seed's share is what is measured.
    """
    seed_x, seed_y, peak = seed
    height, width = image.shape
    x0, x1 = max(0, seed_x - reach[0]), min(width, seed_x + reach[0] + 1)
    y0, y1 = max(0, seed_y - reach[1]), min(height, seed_y + reach[1] + 1)
    window = image[y0:y1, x0:x1]
    contrast = peak - background
    blob = _component_at(window >= background + 0.5 * contrast, seed_x - x0, seed_y - y0)
    cores = (window >= background + CORE_CONTRAST * contrast) & blob
    count, _ = cv2.connectedComponents(cores.astype(np.uint8), connectivity=8)
    if count > 2:  # background and more than one core
        _, nearest = cv2.distanceTransformWithLabels((~cores).astype(np.uint8), cv2.DIST_L2, 3,
                                                     labelType=cv2.DIST_LABEL_CCOMP)  # fmt: skip
        blob &= nearest == nearest[seed_y - y0, seed_x - x0]
    ys, xs = np.nonzero(blob)
    return (float(x0 + xs.min()), float(y0 + ys.min()),
            float(x0 + xs.max() + 1), float(y0 + ys.max() + 1))  # fmt: skip


def _component_at(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """The 8-connected component of `mask` that holds pixel (x, y), as a boolean image."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels == labels[y, x]


def band_contrast(image: np.ndarray, band, noise_floor: float):
    """For the band's rows (`band`: the detector's rows, box, ring gap and width):
    (box mean - ring mean) / (ring spread + floor), and the ring mean.

    Box sums come from OpenCV's box filter, so the cost does not grow with the
    box; float64 keeps the ring's variance (a difference of large sums) exact.
    Only pixels inside the frame count: padding past its edge would invent
    background, too uniform or a mirror image of the target.
    """
    w, h = band.box
    inner = (w + 2 * band.ring_gap, h + 2 * band.ring_gap)
    outer = (inner[0] + 2 * band.ring_width, inner[1] + 2 * band.ring_width)
    reach = outer[1] // 2 + 1  # rows around the band that its boxes read
    top, bottom = max(0, band.rows.start - reach), min(image.shape[0], band.rows.stop + reach)
    values = image[top:bottom].astype(np.float64)
    squares = values * values

    ring_count = _frame_pixels(values.shape, outer) - _frame_pixels(values.shape, inner)
    ring_sum = _box_sum(values, outer) - _box_sum(values, inner)
    ring_squares = _box_sum(squares, outer) - _box_sum(squares, inner)
    ring_mean = ring_sum / ring_count
    ring_spread = np.sqrt(np.maximum(ring_squares / ring_count - ring_mean * ring_mean, 0.0))
    box_mean = _box_sum(values, (w, h)) / _frame_pixels(values.shape, (w, h))
    # Near the edge the ring is one-sided, and a slope across the frame reads as
    # contrast: the less of its background is seen, the less a spot is trusted.
    seen = ring_count / (outer[0] * outer[1] - inner[0] * inner[1])
    ratio = seen * (box_mean - ring_mean) / (ring_spread + noise_floor)
    rows = slice(band.rows.start - top, band.rows.stop - top)
    return ratio[rows].astype(np.float32), ring_mean[rows].astype(np.float32)


def _box_sum(data: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sum over the box of `size` (w, h) around each pixel; nothing past the edge."""
    return cv2.boxFilter(data, cv2.CV_64F, size, normalize=False, borderType=cv2.BORDER_CONSTANT)


def _frame_pixels(shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """How many of the box's pixels lie in the frame: rows in reach times columns in reach."""
    rows = _box_sum(np.ones((shape[0], 1)), (1, size[1]))
    columns = _box_sum(np.ones((1, shape[1])), (size[0], 1))
    return rows * columns
