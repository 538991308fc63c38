"""Reference trackers that the tracking benchmark measures ours against.

Every reference runs on the data of `bench.tracking.scenarios.generate(spec)`
and reports, after each scan, the positions of its confirmed tracks, so that
GOSPA is computed identically for all of them. All use the NCV model with the
scenario's q and position measurements with R = sigma^2 I.

* `Clairvoyant` (the bound): our batched Kalman kernels fed each target's own
  detections; association is given by the truth (`Scan.origin`), clutter is
  ignored. A target's filter starts at its first detection with
  x = [z, 0, 0], P = diag(R, velocity_std^2, velocity_std^2), and from then on
  its estimate is reported at every scan (predicted through missed
  detections). No online tracker with this model does better on average.
* `StoneSoupGNN`: Stone Soup 1.x `MultiTargetTracker` with
  `GNNWith2DAssignment` over a `DistanceHypothesiser` (`Mahalanobis`,
  missed_distance 3), `KalmanPredictor` with
  `CombinedLinearGaussianTransitionModel([ConstantVelocity(q)] * 2)`,
  `KalmanUpdater` with a `LinearGaussian` model (mapping (0, 2), sigma^2 I),
  `UpdateTimeStepsDeleter(3)`, and a `MultiMeasurementInitiator`
  (min_points 2) holding tentative tracks with its own GNN (same hypothesiser)
  and `UpdateTimeStepsDeleter(2)`; prior velocity variance velocity_std^2.
  Its output tracks (those released by the initiator) count as confirmed.
* `StoneSoupJPDA`: `MultiTargetMixtureTracker` with `JPDAwithEHM` over a
  `PDAHypothesiser` given the true clutter spatial density
  (clutter_mean / side^2) and detection probability (gate probability left at
  Stone Soup's default 0.95); same models, initiator and deleter as the GNN.
* `FilterpyLoop`: "the obvious way": one `filterpy.kalman.KalmanFilter` per
  track, Mahalanobis gating by a Python double loop over tracks and
  detections (gate d^2 <= 9, i.e. the distance 3 of the Stone Soup
  hypothesiser; cost d^2), `scipy.optimize.linear_sum_assignment`, a track
  started on every unassigned detection (same start state as the bound),
  confirmed after 3 hits, deleted after 3 consecutive misses.

Timing. A runner is stepped scan by scan: `prepare(scan)` converts the scan
into the runner's input (Stone Soup `Detection` objects; untimed),
`step(prepared)` is the tracker's work for the scan (timed with
`time.perf_counter`), `estimates()` reads the confirmed positions (untimed).

Budget. `run_reference(kind, spec, budget_s)` runs the reference in a child
process that regenerates the identical scenario from the spec, streams each
scan's time and estimates back, and is stopped when the budget (tracking time
after start-up) is spent. A stopped run is reported as not finished, with the
number of scans done; its ms/scan is then the median over the scans it did,
labelled as partial, and no GOSPA is given for it.
"""

from __future__ import annotations

import abc
import datetime
import math
import multiprocessing
import queue
import time
from dataclasses import dataclass, field

import numpy as np

from bench.tracking.scenarios import Scan, ScenarioSpec, generate
from edge.tracking import kalman

MISSED_DISTANCE = 3.0
"""Mahalanobis distance beyond which a detection is not associated to a track."""

START_UP_TIMEOUT_S = 300.0
"""Time allowed to a child process for imports and scenario generation."""


def start_state(z: np.ndarray, R: np.ndarray, velocity_std: float):
    """Track start shared by the bound and the filterpy loop: x = [z, 0, 0]."""
    x = np.array([z[0], z[1], 0.0, 0.0])
    P = np.zeros((4, 4))
    P[:2, :2] = R
    P[2, 2] = P[3, 3] = velocity_std**2
    return x, P


def ncv_matrices(q: float, dt: float):
    """F and Q of the NCV model in the state order [e, n, ve, vn]."""
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    Q = np.zeros((4, 4))
    for pos, vel in ((0, 2), (1, 3)):
        Q[pos, pos] = q * dt**3 / 3.0
        Q[pos, vel] = Q[vel, pos] = q * dt**2 / 2.0
        Q[vel, vel] = q * dt
    return F, Q


class Clairvoyant:
    """The same Kalman filter fed each target's own detections (truth association)."""

    label = "clairvoyant bound"

    def __init__(self, spec: ScenarioSpec):
        n = spec.n_targets
        self.spec = spec
        self.x = np.zeros((4, n))
        self.P = np.zeros((4, 4, n))
        for i in range(n):
            self.P[:, :, i] = np.eye(4)
        self.started = np.zeros(n, dtype=bool)
        self.dt = np.zeros(n)
        self.last_time: float | None = None

    def prepare(self, scan: Scan) -> Scan:
        return scan

    def step(self, scan: Scan) -> None:
        if self.last_time is not None:
            self.dt[:] = np.where(self.started, scan.time - self.last_time, 0.0)
            kalman.predict(self.x, self.P, self.dt, self.spec.q, self.x.shape[1])
        self.last_time = scan.time
        detections = np.flatnonzero(scan.origin >= 0).astype(np.int64)
        targets = scan.origin[detections].astype(np.int64)
        known = self.started[targets]
        kalman.update(self.x, self.P, targets[known], scan.z, scan.R, detections[known])
        for i, j in zip(targets[~known], detections[~known], strict=True):
            x0, P0 = start_state(scan.z[j], scan.R[j], self.spec.velocity_std)
            self.x[:, i] = x0
            self.P[:, :, i] = P0
            self.started[i] = True

    def estimates(self) -> np.ndarray:
        return np.ascontiguousarray(self.x[:2, self.started].T)


@dataclass
class _FilterpyTrack:
    kf: object
    hits: int = 1
    misses: int = 0

    @property
    def confirmed(self) -> bool:
        return self.hits >= FilterpyLoop.CONFIRM_HITS


class FilterpyLoop:
    """One filterpy KalmanFilter per track, Python gating loop, Hungarian assignment."""

    label = "filterpy loop"
    CONFIRM_HITS = 3
    DELETE_MISSES = 3
    GATE_D2 = MISSED_DISTANCE**2
    _NOT_ALLOWED = 1e9

    def __init__(self, spec: ScenarioSpec):
        from filterpy.kalman import KalmanFilter

        self._make_filter = KalmanFilter
        self.spec = spec
        self.tracks: list[_FilterpyTrack] = []
        self.last_time: float | None = None

    def prepare(self, scan: Scan):
        return scan.time, scan.z, scan.R

    def step(self, prepared) -> None:
        from scipy.optimize import linear_sum_assignment

        t, z, R = prepared
        if self.last_time is not None:
            F, Q = ncv_matrices(self.spec.q, t - self.last_time)
            for track in self.tracks:
                track.kf.predict(F=F, Q=Q)
        self.last_time = t
        cost = self._gate(z, R)
        rows, cols = linear_sum_assignment(cost)
        used = np.zeros(len(self.tracks), dtype=bool)
        taken = np.zeros(z.shape[0], dtype=bool)
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] <= self.GATE_D2:
                track = self.tracks[i]
                track.kf.update(z[j], R=R[j])
                track.hits += 1
                track.misses = 0
                used[i] = taken[j] = True
        for track, hit in zip(self.tracks, used, strict=True):
            if not hit:
                track.misses += 1
        self.tracks = [tr for tr in self.tracks if tr.misses < self.DELETE_MISSES]
        for j in np.flatnonzero(~taken):
            self.tracks.append(_FilterpyTrack(self._start(z[j], R[j])))

    def _gate(self, z, R) -> np.ndarray:
        cost = np.full((len(self.tracks), z.shape[0]), self._NOT_ALLOWED)
        for i, track in enumerate(self.tracks):
            kf = track.kf
            predicted = kf.H @ kf.x
            hph = kf.H @ kf.P @ kf.H.T
            for j in range(z.shape[0]):
                nu = z[j] - predicted
                d2 = float(nu @ np.linalg.solve(hph + R[j], nu))
                if d2 <= self.GATE_D2:
                    cost[i, j] = d2
        return cost

    def _start(self, z, R):
        kf = self._make_filter(dim_x=4, dim_z=2)
        kf.x, kf.P = start_state(z, R, self.spec.velocity_std)
        kf.H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
        kf.R = R.copy()
        return kf

    def estimates(self) -> np.ndarray:
        pos = [tr.kf.x[:2] for tr in self.tracks if tr.confirmed]
        return np.array(pos, dtype=float).reshape(-1, 2)


class _StoneSoupRunner(abc.ABC):
    """Shared Stone Soup set-up: models, detections, estimates."""

    label = "Stone Soup"
    EPOCH = datetime.datetime(2024, 1, 1)

    def __init__(self, spec: ScenarioSpec):
        from stonesoup.models.measurement.linear import LinearGaussian
        from stonesoup.models.transition.linear import (
            CombinedLinearGaussianTransitionModel,
            ConstantVelocity,
        )
        from stonesoup.predictor.kalman import KalmanPredictor
        from stonesoup.updater.kalman import KalmanUpdater

        self.spec = spec
        transition = CombinedLinearGaussianTransitionModel(
            [ConstantVelocity(spec.q), ConstantVelocity(spec.q)]
        )
        self.measurement_model = LinearGaussian(
            ndim_state=4, mapping=(0, 2), noise_covar=np.eye(2) * spec.sigma**2
        )
        self.predictor = KalmanPredictor(transition)
        self.updater = KalmanUpdater(self.measurement_model)
        self.tracker = self._build()

    def _distance_hypothesiser(self):
        from stonesoup.hypothesiser.distance import DistanceHypothesiser
        from stonesoup.measures import Mahalanobis

        return DistanceHypothesiser(
            self.predictor, self.updater, measure=Mahalanobis(),
            missed_distance=MISSED_DISTANCE,
        )

    def _initiator(self):
        from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
        from stonesoup.deleter.time import UpdateTimeStepsDeleter
        from stonesoup.initiator.simple import MultiMeasurementInitiator
        from stonesoup.types.state import GaussianState

        v2 = self.spec.velocity_std**2
        prior = GaussianState(np.zeros((4, 1)), np.diag([0.0, v2, 0.0, v2]))
        return MultiMeasurementInitiator(
            prior_state=prior,
            measurement_model=self.measurement_model,
            deleter=UpdateTimeStepsDeleter(2),
            data_associator=GNNWith2DAssignment(self._distance_hypothesiser()),
            updater=self.updater,
            min_points=2,
        )

    @abc.abstractmethod
    def _build(self):
        """The Stone Soup tracker of this runner."""

    def prepare(self, scan: Scan):
        from stonesoup.types.detection import Detection

        when = self.EPOCH + datetime.timedelta(seconds=scan.time)
        detections = {
            Detection(
                row.reshape(2, 1), timestamp=when, measurement_model=self.measurement_model
            )
            for row in scan.z
        }
        return when, detections

    def step(self, prepared) -> None:
        when, detections = prepared
        self.tracker.update_tracker(when, detections)

    def estimates(self) -> np.ndarray:
        pos = [np.asarray(tr.state_vector, dtype=float)[[0, 2], 0] for tr in self.tracker.tracks]
        return np.array(pos, dtype=float).reshape(-1, 2)


class StoneSoupGNN(_StoneSoupRunner):
    label = "Stone Soup GNN"

    def _build(self):
        from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
        from stonesoup.deleter.time import UpdateTimeStepsDeleter
        from stonesoup.tracker.simple import MultiTargetTracker

        return MultiTargetTracker(
            initiator=self._initiator(),
            deleter=UpdateTimeStepsDeleter(3),
            detector=None,
            data_associator=GNNWith2DAssignment(self._distance_hypothesiser()),
            updater=self.updater,
        )


class StoneSoupJPDA(_StoneSoupRunner):
    label = "Stone Soup JPDAwithEHM"

    def _build(self):
        from stonesoup.dataassociator.probability import JPDAwithEHM
        from stonesoup.deleter.time import UpdateTimeStepsDeleter
        from stonesoup.hypothesiser.probability import PDAHypothesiser
        from stonesoup.tracker.simple import MultiTargetMixtureTracker

        hypothesiser = PDAHypothesiser(
            self.predictor,
            self.updater,
            clutter_spatial_density=self.spec.clutter_density,
            prob_detect=self.spec.detection_probability,
        )
        return MultiTargetMixtureTracker(
            initiator=self._initiator(),
            deleter=UpdateTimeStepsDeleter(3),
            detector=None,
            data_associator=JPDAwithEHM(hypothesiser),
            updater=self.updater,
        )


REFERENCES = {
    "clairvoyant": Clairvoyant,
    "stonesoup-gnn": StoneSoupGNN,
    "stonesoup-jpda": StoneSoupJPDA,
    "filterpy-loop": FilterpyLoop,
}


@dataclass
class ReferenceRun:
    """What a reference did on a scenario: per-scan times and estimates."""

    kind: str
    label: str
    n_scans: int
    scan_ms: list[float] = field(default_factory=list)
    estimates: list[np.ndarray] = field(default_factory=list)
    budget_s: float | None = None
    error: str | None = None

    @property
    def scans_done(self) -> int:
        return len(self.scan_ms)

    @property
    def finished(self) -> bool:
        return self.error is None and self.scans_done == self.n_scans

    @property
    def median_ms(self) -> float:
        return float(np.median(self.scan_ms)) if self.scan_ms else math.nan


def run_reference(kind: str, spec: ScenarioSpec, budget_s: float | None = None) -> ReferenceRun:
    """Run reference `kind` on `spec`; in a budgeted child process if budget_s is given."""
    if budget_s is None:
        run = ReferenceRun(kind, REFERENCES[kind].label, spec.n_scans)
        for ms, est in _scan_steps(*_set_up(kind, spec)):
            run.scan_ms.append(ms)
            run.estimates.append(est)
        return run
    return _run_in_child(kind, spec, budget_s)


def _set_up(kind: str, spec: ScenarioSpec):
    return generate(spec), REFERENCES[kind](spec)


def _scan_steps(scenario, runner):
    """Yield (ms, estimates) per scan of `runner` on `scenario`."""
    for scan in scenario:
        prepared = runner.prepare(scan)
        start = time.perf_counter()
        runner.step(prepared)
        ms = (time.perf_counter() - start) * 1e3
        yield ms, runner.estimates()


def _child_main(kind: str, spec: ScenarioSpec, out) -> None:
    try:
        scenario, runner = _set_up(kind, spec)
        out.put(("ready", None, None))
        for ms, est in _scan_steps(scenario, runner):
            out.put(("scan", ms, est))
        out.put(("done", None, None))
    except Exception as exc:  # reported to the parent, which records it
        out.put(("error", f"{type(exc).__name__}: {exc}", None))


def _run_in_child(kind: str, spec: ScenarioSpec, budget_s: float) -> ReferenceRun:
    run = ReferenceRun(kind, REFERENCES[kind].label, spec.n_scans, budget_s=budget_s)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_child_main, args=(kind, spec, out), daemon=True)
    child.start()
    try:
        _collect(run, out, child, budget_s)
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
    return run


_POLL_S = 0.5


def _collect(run: ReferenceRun, out, child, budget_s: float) -> None:
    """Read the child's messages into `run` until it is done, fails or the budget is spent."""
    deadline = time.monotonic() + START_UP_TIMEOUT_S
    started = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            tag, value, est = out.get(timeout=min(max(remaining, 0.001), _POLL_S))
        except queue.Empty:
            if not child.is_alive():
                run.error = f"child process exited with code {child.exitcode}"
                return
            if remaining > 0:
                continue
            if not started:
                run.error = f"did not start in {START_UP_TIMEOUT_S:.0f} s"
            return
        if tag == "ready":
            started = True
            deadline = time.monotonic() + budget_s
        elif tag == "scan":
            run.scan_ms.append(value)
            run.estimates.append(est)
        elif tag == "error":
            run.error = value
            return
        else:
            return
