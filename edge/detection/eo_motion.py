"""Moving people and vehicles seen from a moving EO camera, without a neural network.

The desert floor is flat, so two frames of it from any two camera poses are
related by a plane homography; what does not follow that homography moves.
Each frame:

1. goes grey and shrinks to a working resolution (three quarters: people two
   metres apart still come out as two blobs at 150 m, at half the cost of the
   full frame), with a slight blur that keeps fine texture from aliasing;
2. is registered against two past frames, about `gap_s` and `2 gap_s` old
   (`edge.detection.eo_registration`: corners tracked by pyramidal Lucas-Kanade
   at half the working size, a RANSAC homography, moving targets falling out
   as outliers);
3. is compared, pixel by pixel, with each past frame warped onto it;
4. keeps the pixels changed against *both* past frames. A target's current
   position differs from both; each of its old positions (the ghosts a single
   difference leaves behind) differs from one only;
5. is thresholded above the local noise, closed, and cut into blobs; a blob
   that stood out from the ground around it more in the past than it does now
   is ground a slow target has just uncovered, and is dropped;
6. each blob is located on the ground through `edge.georef`: the slant range
   gives its size in metres (so a car-sized blob at 120 m is not a person),
   and its distance to the detections of a second earlier its speed; size and
   speed give the class. Low streaks seen at a grazing angle are ground, not
   targets, and are dropped.

Known limits: a target that moves less than about a pixel in `gap_s` (walking
straight at or away from a distant camera) is not seen, nor is one standing
still; people whose blobs touch in the image come out as one detection; a file
of walkers spaced by what each walks in `2 gap_s` hides its followers (each
stands where the one ahead stood), a coincidence the gap cannot avoid for all
spacings.

Bad frames (not an image, wrong size or dtype, blank, no usable pose, time
running backwards, registration failing) give no detections and are counted
in `MotionDetector.counters`; detect() never raises on a frame.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from edge.detection import Detection
from edge.detection import eo_blob_geometry as blob_geometry
from edge.detection import eo_registration as registration
from edge.georef import Camera, Georeferencer, Pose
from wire.geo import EnuFrame

log = logging.getLogger(__name__)

_KERNEL_3X3 = np.ones((3, 3), np.uint8)
_NOISE_GRID = (9, 16)  # rows, columns of cells over which the noise is read


@dataclass(frozen=True)
class MotionConfig:
    """Detector parameters; the defaults suit a 720p EO camera 100-300 m from its targets."""

    scale: float = 0.75  # working resolution as a fraction of the camera's
    blur_sigma: float = 0.5  # working pixels
    # Compare with frames this and twice this old. A walker (1.2-1.4 m/s) must move clear
    # of its own footprint (0.5-0.8 m as seen) between the newer one and now: with less,
    # only a sliver of its leading edge changes against both.
    gap_s: float = 0.7
    max_frames: int = 64  # ring of past frames, whatever the frame rate
    max_corners: int = 120  # corners tracked for registration
    min_inliers: int = 24  # fewer RANSAC inliers: registration failed
    ransac_px: float = 0.5  # reprojection tolerance, pixels at half the working size
    threshold: float = 12.0  # grey levels: the least change that counts
    noise_factor: float = 4.0  # the change threshold is at least this times the noise sigma
    min_contrast: float = 2.0  # grey-level std below which a frame is blank (black, saturated)
    min_blob_px: int = 3  # working pixels; smaller components are noise
    # Seen at a grazing angle, the ground's own stones and ripples flatten into low
    # streaks that flicker as the view changes; a standing target does not flatten.
    streak_height_px: float = 3.0  # camera pixels: lower blobs are streaks ...
    streak_depression_deg: float = 30.0  # ... when seen this close to the horizon
    # Sizes as seen, across the line of sight. A person (0.5 m by 1.7 m) shows about
    # 0.8 m², a pickup 7 m² end on to 11 m² broadside; a camel 2.5 to 5 m² is neither.
    # A target only a pixel or two wide at working size measures up to twice its size
    # (its contrast spreads over the pixels around it), hence the person's margin.
    min_area_m2: float = 0.05
    max_area_m2: float = 60.0  # beyond a lorry: misregistration, not a target
    person_max_area_m2: float = 2.2
    person_max_length_m: float = 3.0
    vehicle_min_area_m2: float = 6.0
    person_max_speed: float = 4.0  # m/s: faster than a jog is on wheels
    speed_baseline_s: float = 1.0  # speed from the detections this long ago
    max_speed: float = 45.0  # m/s: farther than this in the baseline is another target

    def __post_init__(self):
        if not (0.1 <= self.scale <= 1.0 and self.gap_s > 0 and self.max_frames >= 3):
            raise ValueError(f"MotionConfig: bad scale, gap_s or max_frames: {self}")


@dataclass
class MotionCounters:
    frames: int = 0
    detections: int = 0
    rejected_not_image: int = 0
    rejected_dtype: int = 0
    rejected_size: int = 0
    rejected_blank: int = 0
    rejected_pose: int = 0
    rejected_time: int = 0  # non-finite, or not after the previous frame
    warming_up: int = 0  # no past frame old enough yet
    registration_failed: int = 0
    blobs_off_ground: int = 0  # the foot's ray misses the ground
    blobs_wrong_size: int = 0  # outside the metre gates
    blobs_streaks: int = 0  # low streaks of ground seen at a grazing angle


@dataclass
class _PastFrame:
    time: float
    grey: np.ndarray  # working resolution
    coarse: np.ndarray  # half the working resolution, to register by
    ground: np.ndarray  # (K, 2) ENU of its detections, for speeds


@dataclass(frozen=True)
class _Blob:
    box: tuple[float, float, float, float]  # full-resolution pixels
    area_px: float  # full-resolution pixels
    peak: float  # strongest change inside, grey levels
    cells: tuple[int, int, np.ndarray]  # top, left and mask of its working pixels


def as_pose(pose) -> Pose | None:
    """`pose` as an `edge.georef.Pose` (from any object with its fields), or None if unusable.

    The simulator's camera pose carries the same fields with an earth-frame gimbal.
    """
    if not isinstance(pose, Pose):
        try:
            pose = Pose(
                float(pose.lat), float(pose.lon), float(pose.alt), float(pose.roll),
                float(pose.pitch), float(pose.yaw), float(pose.gimbal_roll),
                float(pose.gimbal_pitch), float(pose.gimbal_yaw),
                getattr(pose, "gimbal_frame", "earth"),
                tuple(float(c) for c in getattr(pose, "velocity_ned", (0.0, 0.0, 0.0))),
            )  # fmt: skip
        except (AttributeError, TypeError, ValueError):
            return None
    return pose if pose.is_finite() else None


class MotionDetector:
    """One camera's moving-target detector; keeps the last 2.5 s of frames at most.

    >>> detector = MotionDetector(Camera.from_hfov(math.radians(60), 1280, 720), post_frame)
    >>> detections = detector.detect(t, image_bgr, pose)
    """

    def __init__(self, camera: Camera, frame: EnuFrame, ground_alt: float | None = None,
                 config: MotionConfig | None = None):  # fmt: skip
        self.camera = camera
        self.config = config or MotionConfig()
        self.counters = MotionCounters()
        self._frame = frame
        self._georef = Georeferencer(camera, frame, ground_alt)
        self._work_size = (max(8, round(camera.width * self.config.scale)),
                           max(8, round(camera.height * self.config.scale)))  # fmt: skip
        self._past: deque[_PastFrame] = deque(maxlen=self.config.max_frames)

    @property
    def frames_held(self) -> int:
        """Past frames in the ring now."""
        return len(self._past)

    def detect(self, time: float, image, pose) -> list[Detection]:
        """The moving targets in `image` (HxWx3 BGR or HxW grey uint8) seen at `time` from `pose`.

        `pose` is an `edge.georef.Pose`, or any object with its fields (earth-frame gimbal).
        """
        self.counters.frames += 1
        try:
            time = float(time)
        except (TypeError, ValueError):
            time = math.nan  # refused below, with the other bad times
        grey = self._working_grey(time, image)
        pose = as_pose(pose)
        if grey is None:
            return []
        if pose is None:
            self.counters.rejected_pose += 1
            return []
        coarse = cv2.pyrDown(grey)
        try:
            blobs = self._moving_blobs(time, grey, coarse)
        except cv2.error as error:  # degenerate geometry deep inside OpenCV
            log.warning("eo_motion registration failed reason=opencv error=%s", error)
            blobs = None
        if blobs is None:
            self.counters.registration_failed += 1
            blobs = []
        detections, ground = self._measure(time, blobs, pose)
        self._remember(_PastFrame(time, grey, coarse, ground))
        self.counters.detections += len(detections)
        return detections

    # --- the frame ------------------------------------------------------------------

    def _working_grey(self, time, image) -> np.ndarray | None:
        """The frame grey at working resolution, or None (counted) if it cannot be used."""
        c = self.counters
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            c.rejected_not_image += 1
            return None
        if image.dtype != np.uint8:
            c.rejected_dtype += 1
            return None
        expected = (self.camera.height, self.camera.width)
        if image.shape[:2] != expected or (image.ndim == 3 and image.shape[2] != 3):
            c.rejected_size += 1
            log.warning("eo_motion frame rejected reason=size shape=%s expected=%s",
                        image.shape, expected)  # fmt: skip
            return None
        if not math.isfinite(time) or (self._past and time <= self._past[-1].time):
            c.rejected_time += 1
            return None
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        # Bilinear, not INTER_AREA: five times faster at three quarters, and the blur
        # after it does the averaging that keeps fine texture from aliasing.
        grey = cv2.resize(grey, self._work_size, interpolation=cv2.INTER_LINEAR)
        if self.config.blur_sigma > 0:
            grey = cv2.GaussianBlur(grey, (0, 0), self.config.blur_sigma)
        if cv2.meanStdDev(grey)[1][0, 0] < self.config.min_contrast:
            c.rejected_blank += 1
            return None
        return grey

    def _remember(self, frame: _PastFrame) -> None:
        self._past.append(frame)
        horizon = frame.time - 2.5 * max(self.config.gap_s, self.config.speed_baseline_s)
        while self._past and self._past[0].time < horizon:
            self._past.popleft()

    def _past_frame(self, time: float, age: float, newer_than: float = -math.inf):
        """The past frame closest to `age` seconds old (within half a gap), or None."""
        tolerance = 0.5 * self.config.gap_s
        candidates = [p for p in self._past if p.time > newer_than
                      and abs(time - p.time - age) <= tolerance]  # fmt: skip
        return min(candidates, key=lambda p: abs(time - p.time - age), default=None)

    # --- pixels that moved ----------------------------------------------------------

    def _moving_blobs(self, time: float, grey, coarse) -> list[_Blob] | None:
        """Components changed against both reference frames; None if registration fails."""
        gap = self.config.gap_s
        older = self._past_frame(time, 2 * gap)
        newer = self._past_frame(time, gap, newer_than=older.time) if older else None
        if older is None or newer is None:
            self.counters.warming_up += 1
            return []
        points = registration.corners(coarse, self.config.max_corners)
        if points.shape[0] < self.config.min_inliers:
            return None
        changes, warped = [], None
        # Bicubic for the newer past frame: bilinear blurs fine texture by up to half a
        # pixel's worth, and every sharp stone would stand out as change. The older one
        # only vetoes where the newer one already saw change: bilinear will do.
        guess = None
        for past, interpolation in ((newer, cv2.INTER_CUBIC), (older, cv2.INTER_LINEAR)):
            homography = registration.homography_onto(
                coarse, past.coarse, points, self.config.ransac_px, self.config.min_inliers,
                guess)  # fmt: skip
            if homography is None:
                return None
            # The view moves steadily: twice the way to the newer frame is near the older.
            guess = homography @ homography
            warped, seen = registration.warp_onto(grey, past.grey,
                                                  registration.to_working(homography),
                                                  interpolation)  # fmt: skip
            changes.append(_difference(grey, warped, seen))
        both = cv2.min(changes[0], changes[1])
        blobs = self._components(both, self._threshold_map(changes[0]))
        # Judged against the older frame: the target has moved farthest from there, so
        # its place now was plainly ground then.
        return [b for b in blobs if _stands_out_now(grey, warped, b.cells)]

    def _threshold_map(self, change: np.ndarray) -> np.ndarray:
        """Per-pixel change threshold: the floor, or above the local noise where that is higher.

        The noise is read per cell of a coarse grid, as the median of the change from
        a registered past frame (robust: a target fills a small part of a cell). It is
        higher where the floor is finely textured and resampling cannot follow it, such
        as the far field of an oblique view.
        """
        rows, cols = _NOISE_GRID
        sample = change[::3, ::3]  # a few hundred pixels a cell: plenty for a median
        cell_h, cell_w = sample.shape[0] // rows, sample.shape[1] // cols
        cells = sample[:rows * cell_h, :cols * cell_w].reshape(rows, cell_h, cols, cell_w)
        median = np.median(cells.transpose(0, 2, 1, 3).reshape(rows, cols, -1), axis=2)
        # For Gaussian noise the median absolute difference is 0.6745 sigma.
        threshold = np.maximum(self.config.threshold, self.config.noise_factor * median / 0.6745)
        threshold = np.clip(threshold, 0, 255).astype(np.uint8)
        return cv2.resize(threshold, (change.shape[1], change.shape[0]),
                          interpolation=cv2.INTER_LINEAR)  # fmt: skip

    def _components(self, change: np.ndarray, threshold: np.ndarray) -> list[_Blob]:
        """The connected regions of change above threshold, as blobs in full-resolution pixels.

        Outer contours (8-connected) give the regions: several times cheaper than
        labelling every pixel, and a blob's rare holes do not matter here.
        """
        mask = cv2.compare(change, threshold, cv2.CMP_GT)
        # Closing joins the pieces of one target (legs, shadow) a pixel apart.
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL_3X3)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scale = self.config.scale
        blobs = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            inside = mask[y:y + h, x:x + w]
            if cv2.countNonZero(inside) < self.config.min_blob_px:
                continue
            box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
            area, peak = _area_and_peak(change[y:y + h, x:x + w], inside, scale)
            blobs.append(_Blob(box, area, peak, (y, x, inside)))
        return blobs

    # --- on the ground --------------------------------------------------------------

    def _measure(self, time, blobs, pose) -> tuple[list[Detection], np.ndarray]:
        """Detections of the blobs that pass the metre gates, and their ENU ground points."""
        if not blobs:
            return [], np.empty((0, 2))
        boxes = np.array([b.box for b in blobs])
        down = blob_geometry.down_directions(self.camera, pose, boxes)
        feet = blob_geometry.feet(boxes, down)
        located = self._georef.locate(pose, feet[:, 0], feet[:, 1])
        drone = np.array(self._frame.from_geodetic(pose.lat, pose.lon, pose.alt), float)
        slant = np.linalg.norm(located.enu - drone, axis=1)
        metres_per_px = slant * blob_geometry.pixel_angle(self.camera, feet)
        depression = np.degrees(np.arcsin(np.clip((drone[2] - located.enu[:, 2]) / slant, -1, 1)))
        speeds = self._speeds(time, located.z)
        detections, ground = [], []
        for k, blob in enumerate(blobs):
            if not located.ok[k]:
                self.counters.blobs_off_ground += 1
                continue
            if self._streak(blob, depression[k]):
                self.counters.blobs_streaks += 1
                continue
            area = blob.area_px * metres_per_px[k] ** 2
            length = max(blob.box[2] - blob.box[0], blob.box[3] - blob.box[1]) * metres_per_px[k]
            if not self.config.min_area_m2 <= area <= self.config.max_area_m2:
                self.counters.blobs_wrong_size += 1
                continue
            detections.append(Detection(
                box=blob.box, centroid=(float(feet[k, 0]), float(feet[k, 1])),
                pixel_covariance=blob_geometry.foot_covariance(blob.box),
                target_class=self._classify(area, length, speeds[k]),
                score=self._score(blob.peak),
            ))  # fmt: skip
            ground.append(located.z[k])
        return detections, np.array(ground).reshape(-1, 2)

    def _streak(self, blob: _Blob, depression_deg: float) -> bool:
        """Whether the blob is a low streak seen near the horizon: ground, not a target."""
        low = blob.box[3] - blob.box[1] < self.config.streak_height_px
        return low and depression_deg < self.config.streak_depression_deg

    def _speeds(self, time: float, ground: np.ndarray) -> np.ndarray:
        """m/s from the nearest detection `speed_baseline_s` earlier to each point; NaN if none.

        The nearest neighbour may be another target when this one was missed then:
        the speed is a hint, a few metres per second off now and again.
        """
        speeds = np.full(ground.shape[0], np.nan)
        past = self._past_frame(time, self.config.speed_baseline_s)
        if past is None or past.ground.shape[0] == 0:
            return speeds
        dt = time - past.time
        distances = np.linalg.norm(ground[:, None, :] - past.ground[None, :, :], axis=2)
        nearest = distances.min(axis=1)
        plausible = nearest <= self.config.max_speed * dt  # NaN rows compare False
        speeds[plausible] = nearest[plausible] / dt
        return speeds

    def _classify(self, area_m2: float, length_m: float, speed: float) -> str:
        """Faster than anyone runs: a vehicle. Else by size: a person, a vehicle, or
        in between (a camel, people walking close together) unknown."""
        c = self.config
        if speed > c.person_max_speed:  # False when the speed is unknown (NaN)
            return "vehicle"
        if area_m2 <= c.person_max_area_m2 and length_m <= c.person_max_length_m:
            return "person"
        return "vehicle" if area_m2 >= c.vehicle_min_area_m2 else "unknown"

    def _score(self, peak: float) -> float:
        """0 at the floor threshold, towards 1 as the change grows past it."""
        return float(np.clip(1.0 - self.config.threshold / max(peak, 1.0), 0.0, 1.0))


def _difference(grey, warped, seen) -> np.ndarray:
    """|current - warped past|; zero where the past frame did not see."""
    change = cv2.absdiff(grey, warped)
    change[~seen] = 0
    return change


def _stands_out_now(grey, warped, cells, pad: int = 2, ratio: float = 0.7) -> bool:
    """Whether the blob's pixels stand out from the ground around them now, not clearly
    less (`ratio`) than they did in the past frame.

    Where a target is now, the present differs from its surroundings and the past
    showed ground like them. Where a slow target has just uncovered the ground
    behind it, both past frames showed the target, the present shows ground: a
    blob changed against both past frames that the present explains as ground.
    Where a target overlaps its own past place, both stand out about as much.
    """
    y, x, mask = cells
    height, width = grey.shape
    top, left = max(y - pad, 0), max(x - pad, 0)
    bottom, right = min(y + mask.shape[0] + pad, height), min(x + mask.shape[1] + pad, width)
    blob = np.zeros((bottom - top, right - left), bool)
    blob[y - top:y - top + mask.shape[0], x - left:x - left + mask.shape[1]] = mask > 0
    ring = ~cv2.dilate(blob.astype(np.uint8), _KERNEL_3X3).astype(bool)
    if not ring.any():
        return True
    now, then = grey[top:bottom, left:right], warped[top:bottom, left:right]
    ground = float(now[ring].mean())
    return abs(float(now[blob].mean()) - ground) >= ratio * abs(float(then[blob].mean()) - ground)


def _area_and_peak(change: np.ndarray, inside: np.ndarray, scale: float) -> tuple[float, float]:
    """A blob's area in full-resolution pixels, and its strongest change.

    The area is the summed change over the peak: blur (optics, motion, the shrink
    to working size) spreads a target's contrast over more pixels without changing
    its sum, so this stays near the true area where counting pixels above the
    threshold would count the blurred rim too.
    """
    peak = float(cv2.minMaxLoc(change, mask=inside)[1])
    total = float(cv2.sumElems(cv2.bitwise_and(change, change, mask=inside))[0])
    return total / max(peak, 1.0) / scale**2, peak
