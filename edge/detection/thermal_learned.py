"""People, vehicles and animals in thermal frames, found by a small learned network.

The network (`models/thermal_centres.onnx`, trained by `training/thermal/train.py`
on real HIT-UAV images and rendered frames; see `models/thermal_centres.md`) is a
fully convolutional centre-heatmap detector: from a whole frame at once it gives,
every 4 pixels, how likely a target of each class is centred there, with the
target's box size. The edge runs it with ONNX Runtime on one CPU thread:

1. The frame becomes a float image scaled by its own 1st and 99.9th
   percentiles (8-bit AGC video and 16-bit radiometric frames alike). Empty,
   flat, non-finite or malformed frames are counted and give no detection.
2. Where the node knows the camera's pose, each image row's ground sample
   distance and depression angle (`thermal.view_geometry`) go in beside the
   image, so the network can weigh a blob's size in metres; rows that see no
   ground, or see it too coarsely for a person to span a pixel or two, are left
   out of the frame it reads (the sky costs nothing). Without a pose the
   network reads the whole frame and judges by appearance alone.
3. Local maxima of the class heatmaps above `threshold` become detections:
   the class with the highest probability names the detection, the
   probabilities (calibrated on held-out training images) go with it to the
   tracker's class estimate, and the score is the calibrated probability that
   a target is there at all (calibrated per class, so that one threshold
   means the same for people and vehicles).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.detection import Detection
from edge.detection.thermal import MIN_SIDE_PX, FrameRejected, ViewGeometry, grey_of, view_geometry
from edge.georef import Georeferencer, Pose

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "thermal_centres.onnx"
PAD = 16  # the network halves the frame four times: its sides are padded to this multiple
REFERENCE_GSD = 0.06  # m/px at which the geometry plane's log scale is 0
MAX_GSD = 0.35  # m/px: coarser rows are left out (a person is about a pixel there)
MIN_RANGE = 4.0  # sensor levels between the 1st and 99.9th percentile: less is a flat frame
HEADROOM = 1.5  # normalised values are clipped here: hotter than the 99.9th percentile by half
REJECT_LOG_EVERY = 100


@dataclass(frozen=True)
class ModelInfo:
    """What the model file says about itself (its ONNX metadata)."""

    classes: tuple[str, ...]
    stride: int
    threshold: float  # default operating point: the calibrated score a detection needs
    # Per class, (a, b): a maximum whose likeliest class is c scores
    # sigmoid(a_c * logit(peak) + b_c), the probability that a target is there: one
    # threshold then means the same for a person's peak as for a vehicle's.
    score_calibration: tuple[tuple[float, float], ...]
    class_temperature: float  # class probabilities = softmax(logit(p_c) / T)


@dataclass
class LearnedThermalCounters:
    frames: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> frames
    without_geometry: int = 0  # frames read without a pose's geometry
    detections: int = 0


def normalise(frame) -> np.ndarray:
    """The frame as float32, 0 at its 1st percentile and 1 at its 99.9th, clipped to
    [0, HEADROOM]; FrameRejected for what cannot be a thermal frame."""
    if not isinstance(frame, np.ndarray):
        raise FrameRejected("not_an_array", type(frame).__name__)
    if frame.size == 0:
        raise FrameRejected("empty")
    if frame.dtype.kind not in "uif":
        raise FrameRejected("bad_dtype", str(frame.dtype))
    grey = grey_of(frame)
    if min(grey.shape) < MIN_SIDE_PX:
        raise FrameRejected("too_small", str(grey.shape))
    low, high = _percentiles(grey)
    integer = grey.dtype.kind in "ui"
    if not (math.isfinite(low) and math.isfinite(high)):
        raise FrameRejected("non_finite")
    if high - low < (MIN_RANGE if integer else 1e-6 * max(1.0, abs(high))):
        raise FrameRejected("flat", f"1-99.9 percentile range {high - low:.3g}")
    if grey.dtype == np.uint8:  # one table look-up per pixel does the whole mapping
        levels = (np.arange(256, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
        return cv2.LUT(grey, np.clip(levels, 0.0, HEADROOM))
    image = (grey.astype(np.float32) - np.float32(low)) * np.float32(1.0 / (high - low))
    return np.clip(image, 0.0, HEADROOM, out=image)


def _percentiles(grey: np.ndarray) -> tuple[float, float]:
    """(1st, 99.9th) percentile: exact from the histogram for 8 bits, else from every
    fourth pixel each way (a frame's level statistics do not need all of them)."""
    if grey.dtype == np.uint8:
        cumulative = np.cumsum(cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel())
        total = cumulative[-1]
        return (float(np.searchsorted(cumulative, 0.01 * total)),
                float(np.searchsorted(cumulative, 0.999 * total)))  # fmt: skip
    if grey.dtype.kind == "f" and not np.isfinite(grey).all():
        raise FrameRejected("non_finite")
    sample = grey[::4, ::4].astype(np.float64)
    low, high = np.percentile(sample, [1.0, 99.9])
    return float(low), float(high)


def geometry_planes(geometry: ViewGeometry | None, rows: slice, width: int,
                    stride: int) -> np.ndarray:  # fmt: skip
    """(3, H/stride, W/stride) float32: known (1 or 0), log2 of the ground sample distance
    against REFERENCE_GSD, sin of the depression; all 0 where the row's geometry is unknown."""
    height = rows.stop - rows.start
    planes = np.zeros((3, height // stride, width // stride), np.float32)
    if geometry is None:
        return planes
    centres = np.arange(rows.start, rows.stop, stride) + stride // 2
    centres = np.minimum(centres, len(geometry.gsd) - 1)
    gsd, depression = geometry.gsd[centres], geometry.depression[centres]
    known = np.isfinite(gsd) & np.isfinite(depression)
    scale = np.where(known, np.log2(np.where(known, gsd, 1.0) / REFERENCE_GSD), 0.0)
    planes[0] = known[:, None]
    planes[1] = np.clip(scale, -3.0, 3.0)[:, None]
    planes[2] = np.where(known, np.sin(np.where(known, depression, 0.0)), 0.0)[:, None]
    return planes


def rows_to_read(geometry: ViewGeometry | None, height: int) -> slice:
    """The band of rows that may hold a target: all, or those that see ground finely
    enough, widened to whole multiples of PAD."""
    if geometry is None:
        return slice(0, height)
    usable = np.flatnonzero(np.isfinite(geometry.gsd) & (geometry.gsd <= MAX_GSD))
    if not len(usable):
        raise FrameRejected("no_ground", "no row sees the ground finely enough")
    top = int(usable[0]) // PAD * PAD
    bottom = min(height, -(-(int(usable[-1]) + 1) // PAD) * PAD)
    return slice(top, bottom)


def padded(image: np.ndarray) -> np.ndarray:
    """The image with its bottom and right edges repeated out to multiples of PAD."""
    height, width = image.shape
    pad_h, pad_w = -height % PAD, -width % PAD
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w)), mode="edge")
    return image


@dataclass(frozen=True)
class Found:
    """The decoded network output of one frame, one row per local maximum kept."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 px in the frame read
    peaks: np.ndarray  # (N, C) class probabilities at the maximum, as the network gave them


def decode(peaks: np.ndarray, size: np.ndarray, offset: np.ndarray, stride: int,
           least: float) -> Found:  # fmt: skip
    """The local maxima whose strongest class reaches `least`: boxes and class peaks.

    peaks (C, h, w) holds class probabilities at local maxima and 0 elsewhere; size
    (2, h, w) the box's log(width / stride), log(height / stride); offset (2, h, w)
    the centre within its cell.
    """
    strongest = peaks.max(axis=0)
    ys, xs = np.nonzero(strongest >= least)
    cx = (xs + offset[0, ys, xs]) * stride
    cy = (ys + offset[1, ys, xs]) * stride
    w = np.exp(np.clip(size[0, ys, xs], -3.0, 6.0)) * stride
    h = np.exp(np.clip(size[1, ys, xs], -3.0, 6.0)) * stride
    boxes = np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return Found(boxes.astype(float), peaks[:, ys, xs].T.astype(float))


def distinct(boxes: np.ndarray, scores: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(N,) bool: the maxima kept when each, strongest first, is dropped if its centre lies
    in the box of a stronger one of its own class. A car is a long warm (or cool) body
    whose heatmap may peak more than once; a person beside it is a different class."""
    classes = np.argmax(probabilities, axis=1)
    centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    kept = np.zeros(len(boxes), bool)
    for k in np.argsort(-scores, kind="stable"):
        mine = kept & (classes == classes[k])
        inside = ((boxes[mine, 0] <= centres[k, 0]) & (centres[k, 0] <= boxes[mine, 2])
                  & (boxes[mine, 1] <= centres[k, 1]) & (centres[k, 1] <= boxes[mine, 3]))
        kept[k] = not inside.any()
    return kept


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


def calibrated(found: Found, info: ModelInfo) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N,), class probabilities (N, C)) of the decoded maxima."""
    a, b = np.array(info.score_calibration, float)[np.argmax(found.peaks, axis=1)].T
    scores = 1.0 / (1.0 + np.exp(-(a * _logit(found.peaks.max(axis=1)) + b)))
    logits = _logit(found.peaks) / info.class_temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return scores, weights / weights.sum(axis=1, keepdims=True)


def read_model_info(metadata: dict[str, str]) -> ModelInfo:
    """ModelInfo from the ONNX file's metadata (`training/thermal/train.py` writes it)."""
    try:
        card = json.loads(metadata["dunewatch"])
        return ModelInfo(classes=tuple(card["classes"]), stride=int(card["stride"]),
                         threshold=float(card["threshold"]),
                         score_calibration=tuple((float(a), float(b))
                                                 for a, b in card["score_calibration"]),
                         class_temperature=float(card["class_temperature"]))  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"thermal model metadata unreadable: {error!r}") from error


@dataclass(frozen=True)
class LearnedThermalSettings:
    model: Path = DEFAULT_MODEL
    threshold: float | None = None  # calibrated score a detection needs; None: the model's
    floor: float = 0.05  # a local maximum's strongest class below this is not even scored
    threads: int = 1


class LearnedThermalDetector:
    """One thermal camera's detections from the learned network; the georeferencer, when
    given, supplies the view geometry from each frame's pose."""

    def __init__(self, georeferencer: Georeferencer | None = None,
                 settings: LearnedThermalSettings | None = None):  # fmt: skip
        import onnxruntime  # the edge's inference runtime; loaded only with this detector

        self.georeferencer = georeferencer
        self.settings = settings or LearnedThermalSettings()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(self.settings.model), options,
                                                    providers=["CPUExecutionProvider"])
        self.info = read_model_info(self.session.get_modelmeta().custom_metadata_map)
        self.threshold = (self.info.threshold if self.settings.threshold is None
                          else self.settings.threshold)  # fmt: skip
        self.counters = LearnedThermalCounters()

    def detect(self, frame, pose: Pose | None = None) -> list[Detection]:
        """Detections in one frame, seen from `pose` if known; [] for a frame that holds none."""
        self.counters.frames += 1
        try:
            image = normalise(frame)
            geometry = self._geometry(pose, image.shape)
            rows = rows_to_read(geometry, image.shape[0])
            detections = self._detect(image, geometry, rows)
        except FrameRejected as rejection:
            self._reject(rejection)
            return []
        self.counters.detections += len(detections)
        return detections

    def scores(self, frame, pose: Pose | None = None, least: float | None = None):
        """(boxes (N, 4), scores (N,), class probabilities (N, C)) of every local maximum
        whose calibrated score reaches `least` (default: the detector's floor); for
        sweeping the threshold in an evaluation without running the network again."""
        image = normalise(frame)
        geometry = self._geometry(pose, image.shape)
        rows = rows_to_read(geometry, image.shape[0])
        return self._scored(image, geometry, rows, least)

    def _geometry(self, pose: Pose | None, shape) -> ViewGeometry | None:
        if pose is None or self.georeferencer is None:
            self.counters.without_geometry += 1
            return None
        return view_geometry(self.georeferencer, pose, shape)

    def _scored(self, image, geometry, rows: slice, least: float | None):
        stride = self.info.stride
        band = padded(image[rows])
        planes = geometry_planes(geometry, slice(rows.start, rows.start + band.shape[0]),
                                 band.shape[1], stride)  # fmt: skip
        peaks, size, offset = self.session.run(None, {"image": band[None, None],
                                                      "geometry": planes[None]})  # fmt: skip
        found = decode(peaks[0], size[0], offset[0], stride, self.settings.floor)
        scores, probabilities = calibrated(found, self.info)
        keep = scores >= (self.settings.floor if least is None else least)
        keep[keep] = distinct(found.boxes[keep], scores[keep], probabilities[keep])
        boxes = found.boxes[keep]
        boxes[:, [1, 3]] += rows.start
        height, width = image.shape
        np.clip(boxes[:, [0, 2]], 0.0, width, out=boxes[:, [0, 2]])
        np.clip(boxes[:, [1, 3]], 0.0, height, out=boxes[:, [1, 3]])
        return boxes, scores[keep], probabilities[keep]

    def _detect(self, image, geometry, rows: slice) -> list[Detection]:
        boxes, scores, probabilities = self._scored(image, geometry, rows, self.threshold)
        order = np.argsort(-scores)
        return [detection(boxes[k], scores[k], probabilities[k], self.info.classes)
                for k in order]  # fmt: skip

    def _reject(self, rejection: FrameRejected) -> None:
        rejected = self.counters.rejected
        rejected[rejection.reason] = rejected.get(rejection.reason, 0) + 1
        if rejected[rejection.reason] % REJECT_LOG_EVERY == 1:
            log.warning("thermal frame rejected reason=%s count=%d",
                        rejection, rejected[rejection.reason])  # fmt: skip


def detection(box, score: float, probabilities, classes: tuple[str, ...]) -> Detection:
    """A Detection: its class the likeliest, its foot where the class stands."""
    x0, y0, x1, y1 = (float(v) for v in box)
    target_class = classes[int(np.argmax(probabilities))]
    # A person stands on the bottom of its box; a vehicle's or animal's body is low and
    # long, its centre will do (as the hot-spot detector places them).
    foot_v = y1 if target_class == "person" else (y0 + y1) / 2.0
    sigma_u, sigma_v = max((x1 - x0) / 4.0, 1.0), max((y1 - y0) / 4.0, 1.0)
    return Detection(box=(x0, y0, x1, y1), centroid=((x0 + x1) / 2.0, foot_v),
                     pixel_covariance=np.diag([sigma_u**2, sigma_v**2]),
                     target_class=target_class, score=float(score),
                     class_probabilities={c: float(p) for c, p in
                                          zip(classes, probabilities, strict=True)})  # fmt: skip
