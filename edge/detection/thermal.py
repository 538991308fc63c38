"""Hot-spot detection in thermal frames: people and vehicles warmer than their surroundings.

One frame is enough, so it also finds people who do not move (someone
stranded, sitting or lying in the desert), which a motion detector cannot.

For each frame:
1. The frame becomes a float image on a 0..255 scale set by its own
   percentiles, so 8-bit AGC video and 16-bit radiometric frames share
   thresholds; targets warmer than its 99.9th percentile keep their values
   above 255 (for their sizes), and the gain of the stretch carries the
   sensor's noise floor onto the same scale. Empty, flat (black, saturated),
   non-finite or malformed frames are counted and yield no detection.
2. From the pose, `edge.georef` gives each image row its ground sample
   distance (metres per pixel across the line of sight) and its depression
   angle. Rows that see no ground (sky) are left out.
3. Local background subtraction with a known shape: for each target kind
   (person, vehicle) a box of the target's apparent size at that row, whose
   mean is compared with the mean of a ring around it, like a top-hat but
   sized in metres. The contrast divided by the ring's spread (at least the
   sensor's noise) is the local signal-to-clutter ratio: the threshold adapts
   to how busy the surroundings are.
4. At each local maximum of that ratio, strength = hotness x sqrt(ratio),
   where hotness says how warm the spot is within the frame (people at
   night are among the warmest things there). A spot strong enough is
   segmented at half its contrast, and the blob's size in metres gates it
   out (whose strength is weighted by the box's kind). It is reported when
   its strength reaches `threshold`; a detection's `score` grows with the
   strength.
5. The class guess (`classify`) compares the whole blob's size in metres,
   split among its warm cores, with what a person, an animal and a vehicle
   look like at that depression through the camera's blur: the one kind
   that fits, else "unknown".

Tuned on the real HIT-UAV thermal images (`bench.detection.thermal_eval`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.detection import Detection
from edge.detection.thermal_blobs import band_contrast, blob_box, brightest_in_box, own_blob_box
from edge.detection.thermal_classes import (
    ANIMAL_BODY,
    PERSON_BODY,
    VEHICLE_BODY,
    Body,
    classify,
)
from edge.georef import Camera, Georeferencer, Pose, camera_to_ned

log = logging.getLogger(__name__)

MIN_SIDE_PX = 16  # a smaller frame holds no target worth reporting
MIN_RANGE = 4.0  # grey levels between the 1st and 99.9th percentile: less is a flat frame
GEOMETRY_ROWS = 33  # rows at which the pose is traced to the ground; the rest interpolate
BAND_STEP = 1.25  # a new box size when the row's scale changes by this factor
STRENGTH_SCALE = 1.0  # strength at which score = 1 - 1/e
HOT_PERCENTILE = 99.5  # the frame's "hot" level for hotness
REJECT_LOG_EVERY = 100  # repeated rejections of one kind are logged this often


@dataclass(frozen=True)
class TargetShape:
    """A kind of target: the size its box filter looks for, and the blob sizes accepted as it."""

    name: str  # the Detection's target_class
    width: float  # m across the line of sight
    depth: float  # m along the ground, away from the camera
    height: float  # m up
    min_side: float  # m: a blob's short side at least this ...
    max_side: float  # ... and at most this
    max_long_side: float  # m: a blob's long side at most this
    ring_gap: float  # m between the box and its background ring: room for the rest of the target
    max_gsd: float  # m/px: at coarser scales the target is a pixel or two, noise's size
    weight: float = 1.0  # a blob of this size has its strength multiplied by this

    def fits(self, width_m: float, height_m: float) -> bool:
        """Whether a blob of this apparent size (m) may be such a target."""
        short, long = sorted((width_m, height_m))
        return self.min_side <= short <= self.max_side and long <= self.max_long_side

    def apparent_box(self, gsd: float, depression: float) -> tuple[float, float]:
        """(across, up the image) px: the depth foreshortened by the view, the height added."""
        along = self.depth * math.sin(depression) + self.height * math.cos(depression)
        return self.width / gsd, along / gsd


# Each box is the target's warm core, smaller than its outline, so that any
# target of the kind fills it; the gap around it holds the rest of the target.
# Blob limits are apparent sizes, across the line of sight: a standing person is
# tall seen obliquely and shoulder-wide from above.
PERSON = TargetShape("person", width=0.35, depth=0.25, height=1.2, min_side=0.15,
                     max_side=0.9, max_long_side=2.6, ring_gap=1.0, max_gsd=0.2)  # fmt: skip
# Heading unknown: a square a car of any heading covers; its length fits the gap.
# A warm patch of a vehicle's size is more often sun-warmed ground or a roof than
# a vehicle, so it needs more strength than a person.
VEHICLE = TargetShape("vehicle", width=2.0, depth=2.0, height=1.5, min_side=1.0,
                      max_side=4.0, max_long_side=12.0, ring_gap=1.5, max_gsd=0.6,
                      weight=0.7)  # fmt: skip


@dataclass(frozen=True)
class ThermalSettings:
    threshold: float = 1.3  # strength (hotness x sqrt(signal-to-clutter)) a hot spot needs
    min_ratio: float = 0.5  # signal-to-clutter a local maximum needs to be looked at
    # Sensor levels added to the ring's spread: flat ground is not noiseless. In the
    # sensor's levels, not the stretched ones: a bland scene, stretched far, would
    # otherwise turn the sensor's own noise into spots as contrasted as people.
    noise_floor: float = 3.0
    ring_width: float = 1.0  # m: the ring's thickness, the local background's sample
    max_candidates: int = 300  # local maxima looked at per frame, strongest first
    person: TargetShape = PERSON
    vehicle: TargetShape = VEHICLE
    # The class guess: a blob's size is its target's apparent size widened by the
    # camera's blur (optics, sampling, the detector's own smoothing), `blur_px`
    # across at half contrast, added in quadrature; within `size_tolerance`
    # (relative) and a pixel of a kind's range it may be that kind. A blob that
    # more than one kind could make, or none, is "unknown". Chosen on the
    # simulator's thermal camera (blur about 7 px at 1280x720) and the HIT-UAV
    # images (sharper): see tests/unit/test_thermal.py.
    bodies: tuple[Body, ...] = (PERSON_BODY, ANIMAL_BODY, VEHICLE_BODY)
    blur_px: float = 6.0
    size_tolerance: float = 0.15
    # A radiometric or fixed-gain core's kelvin per sensor level: with it each detection
    # carries its contrast in kelvin (`Detection.contrast_k`). Unset for AGC video, whose
    # span follows the scene: its levels say nothing of temperature.
    kelvin_per_level: float | None = None
    # At night a person's skin and clothes, an animal's coat and a running engine stand at
    # least this far above the sand they stand on (people 15-25 K in the desert night, seen
    # through the lens's blur a little less); rocks and stony ground that kept the day's heat
    # a few kelvin, rarely 10. A cooler spot is warm ground (`Detection.warm_body` False).
    # Past dusk the sand is still warm and people stand out less: this holds at night only.
    body_contrast_k: float = 11.0
    # Nor does any body stand much more than 20 K above the night's sand (skin and coats are
    # at most about 30 C, clothes less); a running engine's bonnet or exhaust does. Its spot is
    # small (the rest of a vehicle is barely warmer than the sand), so its size says "animal"
    # or nothing: hotter than this, a spot is called a vehicle.
    engine_contrast_k: float = 21.0


@dataclass
class ThermalCounters:
    frames: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> frames
    candidates: int = 0  # local maxima looked at
    gated_size: int = 0  # strong spots whose blob is not of their box's target's size
    weak: int = 0  # spots below the threshold
    detections: int = 0


@dataclass(frozen=True)
class ViewGeometry:
    """Per image row: metres per pixel across the line of sight, and the depression angle;
    and how far an upright body leans in the image at a pixel."""

    gsd: np.ndarray  # (H,) m/px; NaN where the row sees no ground
    depression: np.ndarray  # (H,) rad below the horizontal
    camera: Camera
    down: np.ndarray  # (3,) the local vertical (down) in the camera frame

    def lean(self, x: float, y: float) -> float:
        """Angle (rad) between the image's column and an upright body's image at (x, y):
        the image of a small step down from the ray through (x, y)."""
        c, (forward, right, below) = self.camera, self.down
        a, b = (x - c.cx) / c.fx, (y - c.cy) / c.fy  # the ray (1, a, b)
        across = c.fx * (right - a * forward)
        along = c.fy * (below - b * forward)
        return math.atan2(abs(across), abs(along))


@dataclass(frozen=True)
class _Band:
    """Consecutive rows that share one box size for one target kind."""

    rows: slice
    shape: TargetShape
    box: tuple[int, int]  # w, h px of the target's box
    ring_gap: int  # px
    ring_width: int  # px


class FrameRejected(ValueError):
    """A frame that cannot hold a detection; `reason` names the counter."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ThermalDetector:
    """Hot spots of one thermal camera, gated by the ground size that its pose gives them."""

    def __init__(self, georeferencer: Georeferencer, settings: ThermalSettings | None = None):
        self.georeferencer = georeferencer
        self.settings = settings or ThermalSettings()
        self.counters = ThermalCounters()

    def detect(self, frame, pose: Pose) -> list[Detection]:
        """Detections in one frame seen from `pose`; [] for a frame that cannot hold any."""
        self.counters.frames += 1
        try:
            image, gain = normalised_image(frame)
            geometry = view_geometry(self.georeferencer, pose, image.shape)
        except FrameRejected as rejection:
            self._reject(rejection)
            return []
        try:
            detections = self._detect(image, gain, geometry)
        except Exception:  # a bug must cost this frame, not the camera's whole stream
            log.exception("thermal detection failed shape=%s", image.shape)
            self._reject(FrameRejected("failed"))
            return []
        self.counters.detections += len(detections)
        return detections

    def _detect(self, image: np.ndarray, gain: float, geometry: ViewGeometry) -> list[Detection]:
        s = self.settings
        full = cv2.GaussianBlur(image, (0, 0), 1.0)  # one pixel of sensor noise off the peaks
        # Spots are found on the 0..255 scale; sizes are measured on the unclipped one, where
        # a target warmer than the frame's 99.9th percentile keeps its true peak (clipped, its
        # top would be flat, and its half-contrast outline too wide).
        clipped = np.minimum(full, 255.0)
        hot_levels = np.percentile(clipped, [50.0, HOT_PERCENTILE])
        found: list[tuple[float, Detection]] = []
        for shape in (s.person, s.vehicle):
            for band in shape_bands(geometry, shape, s):
                found += self._detect_in_band(clipped, full, band, hot_levels, gain, geometry)
        return without_duplicates(found)

    def _detect_in_band(self, image: np.ndarray, full: np.ndarray, band: _Band, hot_levels,
                        gain: float, geometry: ViewGeometry,
                        ) -> list[tuple[float, Detection]]:  # fmt: skip
        """(strength, Detection) of the band's spots strong enough and of its shape's size.

        `image` is the frame clipped to 0..255, `full` unclipped; `gain` converts the
        noise floor from sensor levels to the frame's normalised ones.
        """
        shape = band.shape
        ratio, background = band_contrast(full, band, self.settings.noise_floor * gain)
        found = []
        for y, x in self._peaks(ratio, band):
            self.counters.candidates += 1
            row = y - band.rows.start
            seed = brightest_in_box(image, x, y, band.box)
            # The square root lets both a very warm spot in clutter and a mildly
            # warm one on clean ground through; hotness alone would pass warm clutter.
            strength = shape.weight * hotness(seed[2], hot_levels) * math.sqrt(ratio[row, x])
            if strength < self.settings.threshold:  # most spots: before the costlier size
                self.counters.weak += 1
                continue
            peak = brightest_in_box(full, x, y, band.box)
            reach = (band.box[0] // 2 + band.ring_gap, band.box[1] // 2 + band.ring_gap)
            box = blob_box(full, peak, background[row, x], reach)
            x0, y0, x1, y1 = box
            blob_row = min(int((y0 + y1) / 2.0), len(geometry.gsd) - 1)
            gsd = geometry.gsd[blob_row]
            if not shape.fits((x1 - x0) * gsd, (y1 - y0) * gsd):
                self.counters.gated_size += 1
                continue
            contrast_k = self._contrast_k(peak[2] - background[row, x], gain)
            if contrast_k is not None and contrast_k >= self.settings.engine_contrast_k:
                target_class = "vehicle"
            else:
                target_class = self._class_of(full, peak, background[row, x], gsd,
                                              geometry.depression[blob_row],
                                              geometry.lean(peak[0], peak[1]))  # fmt: skip
            warm_body = None if contrast_k is None else contrast_k >= self.settings.body_contrast_k
            detection = make_detection(box, target_class, strength, shape.name, contrast_k,
                                       warm_body)
            found.append((strength, detection))
        return found

    def _contrast_k(self, normalised_contrast: float, gain: float) -> float | None:
        """A spot's peak over its ring's mean in kelvin, where the camera is calibrated."""
        if self.settings.kelvin_per_level is None:
            return None
        return float(normalised_contrast) / gain * self.settings.kelvin_per_level

    def _class_of(self, image: np.ndarray, peak, background: float, gsd: float,
                  depression: float, lean: float) -> str:  # fmt: skip
        """The class guess from the whole blob's apparent size in metres (`classify`).

        The blob is measured in a window that holds the largest kind of target,
        so that an animal found by the person box is not cut to a person's size,
        and split among its warm cores, so that people side by side are not
        measured as one large animal.
        """
        largest = max(max(b.outline) for b in self.settings.bodies)
        reach = max(1, math.ceil(largest / gsd))
        x0, y0, x1, y1 = own_blob_box(image, peak, background, (reach, reach))
        return classify((x1 - x0) * gsd, (y1 - y0) * gsd, gsd, depression, self.settings, lean)

    def _peaks(self, ratio: np.ndarray, band: _Band) -> list[tuple[int, int]]:
        """(row, column) of the band's local maxima of the ratio, strongest first.

        The neighbourhood is half a box, so that people side by side stay apart.
        """
        w, h = band.box
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, ((w // 2) | 1, (h // 2) | 1))
        floor = max(self.settings.min_ratio, 0.0)  # a negative ratio is a cold spot
        local_max = (ratio >= cv2.dilate(ratio, kernel)) & (ratio > floor)
        ys, xs = np.nonzero(local_max)
        order = np.argsort(-ratio[ys, xs])[: self.settings.max_candidates]
        return [(int(ys[i]) + band.rows.start, int(xs[i])) for i in order]

    def _reject(self, rejection: FrameRejected) -> None:
        rejected = self.counters.rejected
        rejected[rejection.reason] = rejected.get(rejection.reason, 0) + 1
        count = rejected[rejection.reason]
        if count % REJECT_LOG_EVERY == 1:
            log.warning("thermal frame rejected reason=%s count=%d detail=%s",
                        rejection.reason, count, rejection)  # fmt: skip


def normalised_image(frame) -> tuple[np.ndarray, float]:
    """(image, gain): the frame as float32 grey, 0 at its 1st percentile and 255 at its 99.9th,
    and the normalised levels per sensor level.

    Stretching by percentiles rather than the dtype's range lets 16-bit
    radiometric frames and 8-bit AGC video share every threshold. The top is
    not clipped: a target warmer than the 99.9th percentile keeps its shape.
    Integer frames count in sensor levels; a float frame's units are its own,
    and its gain is 1.
    """
    if not isinstance(frame, np.ndarray):
        raise FrameRejected("not_an_array", type(frame).__name__)
    if frame.size == 0:
        raise FrameRejected("empty")
    if frame.dtype.kind not in "uif":
        raise FrameRejected("bad_dtype", str(frame.dtype))
    frame = grey_of(frame)
    if min(frame.shape) < MIN_SIDE_PX:
        raise FrameRejected("too_small", str(frame.shape))
    image = frame.astype(np.float32)
    if not np.isfinite(image).all():
        raise FrameRejected("non_finite")
    low, high = (float(q) for q in np.percentile(image, [1.0, 99.9]))
    integer = frame.dtype.kind in "ui"
    least = MIN_RANGE if integer else 1e-6 * max(1.0, abs(high))
    if high - low < least:
        raise FrameRejected("flat", f"1-99.9 percentile range {high - low:.3g}")
    gain = 255.0 / (high - low)
    return np.maximum((image - low) * gain, 0.0), (gain if integer else 1.0)


def grey_of(frame: np.ndarray) -> np.ndarray:
    """A 2-D frame; colour-mapped 8-bit video (three or four channels) becomes grey."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] in (3, 4) and frame.dtype == np.uint8:
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(frame, code)
    if frame.ndim != 2:
        raise FrameRejected("bad_shape", f"{frame.shape} {frame.dtype}")
    return frame


def view_geometry(georeferencer: Georeferencer, pose: Pose, shape) -> ViewGeometry:
    """Each row's metres per pixel and depression angle, traced at the image's centre column."""
    camera = georeferencer.camera
    if tuple(shape) != (camera.height, camera.width):
        raise FrameRejected("wrong_size", f"{shape}, camera is {camera.height}x{camera.width}")
    rows = np.linspace(0.5, camera.height - 0.5, GEOMETRY_ROWS)
    centre = camera.width / 2.0
    left = georeferencer.locate(pose, np.full_like(rows, centre - 0.5), rows)
    right = georeferencer.locate(pose, np.full_like(rows, centre + 0.5), rows)
    seen = left.ok & right.ok
    if not seen.any():
        raise FrameRejected("no_ground", "pose unusable or every row above the horizon")
    gsd = np.linalg.norm(right.z - left.z, axis=1)
    drone = np.array(georeferencer.frame.from_geodetic(pose.lat, pose.lon, pose.alt), float)
    ground = (left.enu + right.enu) / 2.0
    drop = drone[2] - ground[:, 2]
    depression = np.arcsin(np.clip(drop / np.linalg.norm(ground - drone, axis=1), -1.0, 1.0))
    down = camera_to_ned(pose).T @ np.array([0.0, 0.0, 1.0])
    return ViewGeometry(_per_row(rows, gsd, seen, camera.height),
                        _per_row(rows, depression, seen, camera.height), camera, down)  # fmt: skip


def _per_row(rows: np.ndarray, values: np.ndarray, seen: np.ndarray, height: int) -> np.ndarray:
    """Values interpolated to every row; NaN outside the traced rows that saw ground."""
    centres = np.arange(height) + 0.5
    out = np.interp(centres, rows[seen], values[seen])
    out[(centres < rows[seen][0]) | (centres > rows[seen][-1])] = np.nan
    return out


def shape_bands(geometry: ViewGeometry, shape: TargetShape,
                settings: ThermalSettings) -> list[_Band]:  # fmt: skip
    """Runs of rows that share one box size for `shape`: its scale within a BAND_STEP.

    Rows that see no ground, or see it too coarsely for the shape, are in no band.
    """
    gsd, depression = geometry.gsd, geometry.depression
    usable = np.isfinite(gsd) & (gsd <= shape.max_gsd)
    level = np.zeros(gsd.shape, dtype=int)
    level[usable] = np.floor(np.log(gsd[usable]) / math.log(BAND_STEP)).astype(int)
    # A run ends where the level changes or usability does.
    ends = np.flatnonzero((np.diff(level) != 0) | (np.diff(usable.astype(int)) != 0)) + 1
    bands = []
    for start, stop in zip(np.r_[0, ends], np.r_[ends, len(gsd)], strict=True):
        if usable[start]:
            middle = (start + stop) // 2
            bands.append(_band(slice(int(start), int(stop)), gsd[middle], depression[middle],
                               shape, settings))  # fmt: skip
    return bands


def _band(rows: slice, gsd: float, depression: float, shape: TargetShape,
          settings: ThermalSettings) -> _Band:  # fmt: skip
    across, along = shape.apparent_box(gsd, depression)
    box = (max(1, round(across)), max(1, round(along)))
    gap = max(1, round(shape.ring_gap / gsd))
    ring = max(2, round(settings.ring_width / gsd))
    return _Band(rows, shape, box, gap, ring)


def hotness(peak: float, hot_levels) -> float:
    """How warm a peak is within its frame: 0 at the median, 1 at the hot percentile."""
    median, hot = hot_levels
    return float(np.clip((peak - median) / max(hot - median, 1.0), 0.0, 1.5))


def score_of(strength: float) -> float:
    """A detection's score (0..1) for a strength: monotonic, so thresholds carry over."""
    return 1.0 - math.exp(-max(strength, 0.0) / STRENGTH_SCALE)


def make_detection(box, target_class: str, strength: float, shape: str,
                   contrast_k: float | None = None,
                   warm_body: bool | None = None) -> Detection:  # fmt: skip
    """`shape` is the box that found the blob: where its foot is does not wait for the class."""
    x0, y0, x1, y1 = box
    # A person stands on the bottom of its blob; a vehicle's body is low, its centre will do.
    foot_v = y1 if shape == "person" else (y0 + y1) / 2.0
    sigma_u, sigma_v = max((x1 - x0) / 4.0, 1.0), max((y1 - y0) / 4.0, 1.0)
    return Detection(box=(x0, y0, x1, y1), centroid=((x0 + x1) / 2.0, foot_v),
                     pixel_covariance=np.diag([sigma_u**2, sigma_v**2]),
                     target_class=target_class, score=score_of(strength),
                     contrast_k=contrast_k, warm_body=warm_body)  # fmt: skip


def without_duplicates(found: list[tuple[float, Detection]]) -> list[Detection]:
    """Strongest first, dropping any detection whose box centre lies in a stronger one's box.

    The person box and the vehicle box both answer to some blobs, and a
    vehicle's hot engine is a person-sized spot on it: one target, one detection.
    """
    kept: list[Detection] = []
    for _, detection in sorted(found, key=lambda item: -item[0]):
        x0, y0, x1, y1 = detection.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        inside = any(k.box[0] <= cx <= k.box[2] and k.box[1] <= cy <= k.box[3] for k in kept)
        if not inside:
            kept.append(detection)
    return kept
