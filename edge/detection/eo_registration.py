"""Registering one EO frame onto another by the ground plane, for `edge.detection.eo_motion`.

The desert floor is flat, so two views of it are related by a plane
homography. Corners of the current frame are tracked into the past frame by
pyramidal Lucas-Kanade and a RANSAC homography fitted to them; targets that
move fall out as outliers. All of it runs at half the working resolution
(the "coarse" image), a quarter of the cost: a plane's homography from a
hundred corners is precise to a fraction of a pixel even there.
"""

from __future__ import annotations

import cv2
import numpy as np

_TWICE, _HALF = np.diag([2.0, 2.0, 1.0]), np.diag([0.5, 0.5, 1.0])
_LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.03)
# Levels of the Lucas-Kanade pyramid: at level 3 a 13-pixel window follows shifts of
# about 50 coarse pixels; farther, a guess from the newer frame's fit starts it.
_LK_LEVELS = 3


def corners(coarse: np.ndarray, count: int) -> np.ndarray:
    """(N, 1, 2) float32 well-spread corners of the coarse image to register by.

    Found at half its size again, a quarter of the cost: Lucas-Kanade needs
    texture around a point, not the point on the exact corner.
    """
    found = cv2.goodFeaturesToTrack(cv2.pyrDown(coarse), count, 0.01, 4, blockSize=3)
    if found is None:
        return np.empty((0, 1, 2), np.float32)
    return found * 2.0


def homography_onto(coarse: np.ndarray, past_coarse: np.ndarray, points: np.ndarray,
                    ransac_px: float, min_inliers: int,
                    guess: np.ndarray | None = None) -> np.ndarray | None:  # fmt: skip
    """Homography taking current coarse pixels to the past frame's, or None if the fit has
    fewer than `min_inliers` corners agreeing within `ransac_px` coarse pixels, or is
    implausible.

    `guess`, a coarse homography near the answer, starts the corners' search where
    it puts them: a view that has turned farther than the pyramid follows is found.
    """
    flags, start = 0, None
    if guess is not None:
        flags, start = cv2.OPTFLOW_USE_INITIAL_FLOW, cv2.perspectiveTransform(points, guess)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        coarse, past_coarse, points, start, winSize=(13, 13), maxLevel=_LK_LEVELS,
        criteria=_LK_CRITERIA, flags=flags,
    )  # fmt: skip
    tracked = status.ravel() == 1
    if tracked.sum() < min_inliers:
        return None
    # OpenCV's USAC (fast settings) finds the same fit as classic RANSAC, to 1e-4 px
    # here, and stays under 0.2 ms where few corners agree (classic: up to 8 ms).
    homography, inliers = cv2.findHomography(points[tracked], moved[tracked], cv2.USAC_FAST,
                                             ransac_px)  # fmt: skip
    if homography is None or inliers.sum() < min_inliers:
        return None
    # A second or two of flight neither flips nor halves the view: such a fit is wrong.
    det = np.linalg.det(homography[:2, :2]) / homography[2, 2] ** 2
    if not 0.5 < det < 2.0:
        return None
    return homography


def to_working(coarse_homography: np.ndarray) -> np.ndarray:
    """The homography in working pixels: pyrDown made coarse pixel i of working pixel 2i."""
    return _TWICE @ coarse_homography @ _HALF


def warp_onto(grey: np.ndarray, past_grey: np.ndarray, homography: np.ndarray,
              interpolation: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The past frame in the current frame's pixels, and the mask of where it saw."""
    size = (grey.shape[1], grey.shape[0])
    warped = cv2.warpPerspective(past_grey, homography, size,
                                 flags=interpolation | cv2.WARP_INVERSE_MAP)  # fmt: skip
    return warped, seen_before(homography, grey.shape)


def seen_before(homography: np.ndarray, shape, margin: float = 3.0) -> np.ndarray:
    """Mask of current pixels whose place the past frame saw (a margin inside its edge)."""
    height, width = shape
    edge = np.array([[margin, margin], [width - margin, margin],
                     [width - margin, height - margin], [margin, height - margin]],
                    np.float64).reshape(-1, 1, 2)  # fmt: skip
    here = cv2.perspectiveTransform(edge, np.linalg.inv(homography))
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(here).astype(np.int32).reshape(-1, 2), 1)
    return mask.astype(bool)
