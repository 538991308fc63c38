"""The multi-target tracker: predict, gate, associate, update, manage life.

One `Tracker` per edge node tracks ground targets in the node's local ENU
frame. Each call to `update` is one scan of one sensor at one time:

1. reject what cannot be used (time going backwards, non-finite values,
   covariances that are not positive definite), counting every rejection;
2. predict every track to the scan time (each with its own dt);
3. associate and update confirmed tracks first (JPDA by default, GNN on
   request), then tentative tracks with what is left (GNN: a track is born
   from hard decisions), so that a young track never steals a measurement
   from an established one;
4. book hits and misses into the track scores, confirm and delete;
5. start a tentative track at every measurement no track used. Births are
   allowed inside a confirmed track's gate: when two targets walk close
   together one track would otherwise absorb both and starve the second.

A sensor may also say which of its measurements look like clutter whatever
their motion (a calibrated thermal camera's spots too cool for a warm body:
ground that kept the day's heat). Those update the track that takes them but
never start a track, and count as a miss in its score: a rock that a young
track lands on can neither confirm it nor keep it alive, and a track that
jumped onto one fades, while a person's track that crosses rocky ground keeps
its state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy.stats import chi2

from edge.config import TrackerConfig
from edge.tracking import clutter, jpda, kalman, lifecycle
from edge.tracking.assign import associate, gnn_apply, gnn_propose, solve_ambiguous
from edge.tracking.bounds import CLASS_NAMES, class_code, limits_table
from edge.tracking.table import CLASS, CONFIRMED, ID, STATUS, T_STATE, TENTATIVE, Tracks, TrackTable

log = logging.getLogger(__name__)

MAX_SENSORS = 63  # one bit each in a track's int64 sensor mask


@dataclass
class TrackerCounters:
    """What the tracker has refused, for the node's metrics."""

    scans: int = 0
    measurements: int = 0
    rejected_non_finite: int = 0  # NaN or inf in z or R
    rejected_covariance: int = 0  # R not symmetric positive definite
    rejected_stale_scans: int = 0  # scan time before the tracker's clock
    rejected_stale_measurements: int = 0
    clutter_like_measurements: int = 0  # looked like clutter to their sensor: no births
    tracks_born: int = 0
    tracks_confirmed: int = 0
    tracks_deleted: int = 0
    by_sensor: dict[str, int] = field(default_factory=dict)


@njit(cache=True)
def _usable_measurements(z, R):
    """Indices of measurements with finite z and symmetric positive definite R.

    Returns (usable, n_non_finite, n_bad_covariance).
    """
    n = z.shape[0]
    usable = np.empty(n, np.int64)
    m = 0
    non_finite = 0
    bad_covariance = 0
    for j in range(n):
        r00 = R[j, 0, 0]
        r01 = R[j, 0, 1]
        r10 = R[j, 1, 0]
        r11 = R[j, 1, 1]
        finite = np.isfinite(z[j, 0]) and np.isfinite(z[j, 1])
        finite = finite and np.isfinite(r00) and np.isfinite(r01)
        finite = finite and np.isfinite(r10) and np.isfinite(r11)
        if not finite:
            non_finite += 1
            continue
        scale = abs(r00) + abs(r11)
        symmetric = abs(r01 - r10) <= 1e-9 * scale
        if not (symmetric and r00 > 0.0 and r11 > 0.0 and r00 * r11 - r01 * r10 > 0.0):
            bad_covariance += 1
            continue
        usable[m] = j
        m += 1
    return usable[:m], non_finite, bad_covariance


class Tracker:
    """Multi-target tracker over ground measurements in a local ENU frame.

    >>> tracker = Tracker(TrackerConfig(process_noise=0.05))
    >>> tracks = tracker.update(t, z, R)   # z (N, 2) m, R (N, 2, 2) m²
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.counters = TrackerCounters()
        self._table = TrackTable()
        self._clock = -np.inf
        self._next_id = 1
        self._sensor_names: list[str] = []
        self._measurement_track = np.empty(0, np.int64)  # the last scan's, per measurement
        c = self.config
        self._gate_d2 = float(chi2.ppf(c.gate_probability, df=2))
        self._log_pd_over_clutter = float(np.log(c.detection_probability / c.clutter_density))
        self._miss_llr = float(np.log1p(-c.detection_probability))
        birth_density = c.clutter_density if c.birth_density is None else c.birth_density
        self._limits = limits_table(c.class_limits)
        self._clutter = clutter.ClutterMap(clutter.ClutterRules(
            c.clutter_cell_m, c.clutter_half_life_s, c.clutter_detections_per_hit,
            c.clutter_max_extra_hits, c.moving_speed,
        ))  # fmt: skip
        self._life_rules = lifecycle.LifeRules(
            c.confirm_score, c.tentative_delete_score, c.confirmed_delete_drop,
            c.max_coast_time_s, c.max_position_std**2, c.initial_velocity_std**2,
            float(np.log(birth_density / c.clutter_density)),
        )  # fmt: skip

    @property
    def time(self) -> float:
        """Time of the last accepted scan (-inf before the first)."""
        return self._clock

    def tracks(self) -> Tracks:
        """The current tracks, as after the last update."""
        return self._table.snapshot(tuple(self._sensor_names), self._clock,
                                    self._measurement_track)  # fmt: skip

    def set_classes(self, classes: dict[int, str]) -> None:
        """Tell the tracker the class of tracks (id -> class name), so that it bounds
        their gates, speed and coasting by what such a target can do. Ids of tracks no
        longer there are ignored; a track never named stays "unknown"."""
        table = self._table
        ids = table.ints[ID, : table.n]  # ascending: ids are handed out in order
        for track_id, name in classes.items():
            row = int(np.searchsorted(ids, track_id))
            if row < table.n and ids[row] == track_id:
                table.ints[CLASS, row] = class_code(name)

    def classes(self) -> dict[int, str]:
        """The class the tracker bounds each track by (id -> name)."""
        table = self._table
        ids, codes = table.ints[ID, : table.n], table.ints[CLASS, : table.n]
        return {int(i): CLASS_NAMES[c] for i, c in zip(ids, codes, strict=True)}

    def clutter_extra_hits(self, points) -> np.ndarray:
        """The hits beyond its first that a tentative track at each of `points` (N, 2)
        ENU m would now need, for the static clutter learned there."""
        return self._clutter.extra_hits_at(points, self._clock)

    def update(self, t: float, z, R, sensor: str = "default", clutter_like=None) -> Tracks:
        """Process one scan of one sensor taken at time t (UTC seconds). `clutter_like`
        (N,) bool, optional: the measurements whose look says clutter (module docstring)."""
        z, R = _checked_arrays(z, R)
        clutter_like = _checked_mask(clutter_like, z.shape[0])
        t = float(t)
        if not np.isfinite(t):
            raise ValueError(f"scan time must be finite, got {t}")
        sensor_bit = self._sensor_bit(sensor)
        if t < self._clock:
            # Out-of-sequence scans are refused rather than rewinding the
            # filters; the count tells the operator a sensor lags behind.
            self.counters.rejected_stale_scans += 1
            self.counters.rejected_stale_measurements += z.shape[0]
            log.warning(
                "stale scan rejected sensor=%s t=%.3f clock=%.3f n=%d",
                sensor, t, self._clock, z.shape[0],
            )  # fmt: skip
            self._measurement_track = np.full(z.shape[0], -1, np.int64)
            return self.tracks()

        table = self._table
        table.reserve(z.shape[0])  # room for a newborn track per measurement
        usable, non_finite, bad_covariance, confirmed, tentative = _begin_scan(
            *table.columns(), table.n, t, self.config.process_noise, z, R
        )
        self._count_scan(sensor, z.shape[0], non_finite, bad_covariance)
        self.counters.clutter_like_measurements += int(clutter_like[usable].sum())
        self._clock = t
        self._scan(t, z, R, usable, confirmed, tentative, sensor_bit, clutter_like)
        return self.tracks()

    def _count_scan(self, sensor, n, non_finite, bad_covariance):
        counters = self.counters
        counters.scans += 1
        counters.measurements += n
        counters.rejected_non_finite += non_finite
        counters.rejected_covariance += bad_covariance
        counters.by_sensor[sensor] = counters.by_sensor.get(sensor, 0) + n
        if non_finite or bad_covariance:
            log.warning(
                "measurements rejected sensor=%s non_finite=%d bad_covariance=%d",
                sensor, non_finite, bad_covariance,
            )  # fmt: skip

    def _sensor_bit(self, sensor: str) -> int:
        if sensor not in self._sensor_names:
            if len(self._sensor_names) >= MAX_SENSORS:
                raise ValueError(f"at most {MAX_SENSORS} sensors per tracker")
            self._sensor_names.append(sensor)
        return 1 << self._sensor_names.index(sensor)

    def _scan(self, t, z, R, usable, confirmed, tentative, sensor_bit, clutter_like):
        table = self._table
        n = table.n
        assigned = np.full(n, -1, np.int64)
        llr = np.full(n, self._miss_llr)
        free = np.ones(z.shape[0], np.bool_)

        confirmed_stage = self._jpda_stage if self.config.association == "jpda" else self._gnn_stage
        confirmed_stage(t, confirmed, usable, z, R, assigned, llr, free)
        self._gnn_stage(t, tentative, usable[free[usable]], z, R, assigned, llr, free)
        if clutter_like.any():
            took_clutter = (assigned >= 0) & clutter_like[np.maximum(assigned, 0)]
            llr[took_clutter] = self._miss_llr

        newborn = usable[free[usable] & ~clutter_like[usable]]
        table.n, confirmed_now, deleted, self._measurement_track = lifecycle.close_scan(
            *table.columns(), n, assigned, llr, usable, newborn, z, R, t, sensor_bit,
            self._next_id, self._life_rules, self._limits, *self._clutter.columns(),
            self._clutter.rules,
        )
        self._next_id += newborn.shape[0]
        self.counters.tracks_born += newborn.shape[0]
        self.counters.tracks_confirmed += confirmed_now
        self.counters.tracks_deleted += deleted

    def _gnn_stage(self, t, tracks, measurements, z, R, assigned, llr, free):
        """Hard assignment and update of `tracks`; marks what was used."""
        if tracks.shape[0] == 0 or measurements.shape[0] == 0:
            return
        x, P, floats, ints = self._table.columns()
        pair_track, pair_meas, pair_llr, labels, track_to_pair, ambiguous = gnn_propose(
            x, P, floats, ints, tracks, z, R, measurements, t, self._gate_d2, self._limits,
            self._log_pd_over_clutter, self._miss_llr,
        )  # fmt: skip
        if ambiguous.shape[0]:
            miss_cost = np.full(tracks.shape[0], -self._miss_llr)
            solve_ambiguous(
                pair_track, pair_meas, -pair_llr, miss_cost, labels, ambiguous, track_to_pair
            )
        gnn_apply(x, P, tracks, z, R, measurements, pair_track, pair_meas, pair_llr,
                  track_to_pair, assigned, llr, free)  # fmt: skip

    def _jpda_stage(self, t, tracks, measurements, z, R, assigned, llr, free):
        """Probabilistic association and mixture update of `tracks`."""
        if tracks.shape[0] == 0 or measurements.shape[0] == 0:
            return
        x, P, floats, ints = self._table.columns()
        pair_track, pair_meas, pair_llr, beta_pair, beta_miss, in_best_event, too_large = (
            jpda.jpda_propose(
                x, P, floats, ints, tracks, z, R, measurements, t, self._gate_d2, self._limits,
                self._log_pd_over_clutter, self._miss_llr, self.config.max_jpda_events,
            )
        )  # fmt: skip
        if too_large.any():
            self._hard_decisions(too_large, pair_track, pair_meas, pair_llr, beta_pair, beta_miss,
                                 in_best_event)  # fmt: skip
        jpda.jpda_apply(x, P, tracks, z, R, measurements, pair_track, pair_meas, pair_llr,
                        beta_pair, beta_miss, in_best_event, self._miss_llr, assigned, llr,
                        free)  # fmt: skip

    def _hard_decisions(self, too_large, pair_track, pair_meas, pair_llr, beta_pair, beta_miss,
                        in_best_event):  # fmt: skip
        """GNN for the clusters too large to enumerate, written as 0/1 betas (and as
        their best event)."""
        pairs = np.flatnonzero(too_large)
        tracks, track_local = np.unique(pair_track[pairs], return_inverse=True)
        meas, meas_local = np.unique(pair_meas[pairs], return_inverse=True)
        miss_cost = np.full(tracks.shape[0], -self._miss_llr)
        track_to_pair = associate(
            track_local, meas_local, -pair_llr[pairs], miss_cost, tracks.shape[0], meas.shape[0]
        )
        chosen = pairs[track_to_pair[track_to_pair >= 0]]
        beta_pair[chosen] = 1.0
        beta_miss[pair_track[chosen]] = 0.0
        in_best_event[chosen] = True


@njit(cache=True)
def _begin_scan(x, P, floats, ints, n, t, q, z, R):
    """Predict every track to t and sort out what this scan can use.

    Returns (usable measurements, non-finite count, bad covariance count,
    confirmed tracks, tentative tracks).
    """
    dt = np.empty(n)
    for i in range(n):
        dt[i] = t - floats[T_STATE, i]
        floats[T_STATE, i] = t
    kalman.predict(x, P, dt, q, n)
    usable, non_finite, bad_covariance = _usable_measurements(z, R)
    confirmed = np.flatnonzero(ints[STATUS, :n] == CONFIRMED)
    tentative = np.flatnonzero(ints[STATUS, :n] == TENTATIVE)
    return usable, non_finite, bad_covariance, confirmed, tentative


def _checked_mask(clutter_like, n: int) -> np.ndarray:
    """The clutter-like flags as (n,) bool; none set when not given."""
    if clutter_like is None:
        return np.zeros(n, np.bool_)
    mask = np.asarray(clutter_like, dtype=np.bool_).reshape(-1)
    if mask.shape[0] != n:
        raise ValueError(f"clutter_like must have {n} flags to match z, got {mask.shape[0]}")
    return mask


def _checked_arrays(z, R):
    """z as (N, 2) and R as (N, 2, 2) contiguous float64, or ValueError."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    R = np.ascontiguousarray(R, dtype=np.float64)
    if z.ndim == 1 and z.shape[0] == 0:
        z = z.reshape(0, 2)
    if R.ndim == 1 and R.shape[0] == 0:
        R = R.reshape(0, 2, 2)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {z.shape}")
    if R.shape != (z.shape[0], 2, 2):
        raise ValueError(f"R must have shape ({z.shape[0]}, 2, 2) to match z, got {R.shape}")
    return z, R
