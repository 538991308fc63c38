"""Benchmark scenarios for the multi-target tracker, defined exactly.

Anyone can regenerate the data bit for bit from this description (NumPy's
`default_rng`, PCG64) or compare against it with their own generator.

Common to every scenario
------------------------
* Frame: 2-D ENU metres. The surveillance region is the square
  [-side/2, side/2] x [-side/2, side/2] centred on the origin.
* State `[e, n, ve, vn]`. Every target exists from scan 0 to the last scan.
  Initial positions are uniform in the central 2/3 of the square,
  [-side/3, side/3] per axis; initial velocities are N(0, velocity_std^2) per
  axis, independent.
* Scans at t_k = k * dt, k = 0 .. n_scans-1. Between scans each target moves
  by the exact discretisation of the nearly-constant-velocity (white
  acceleration) model, independently per axis:
  [p, v] <- F [p, v] + w, F = [[1, dt], [0, 1]],
  w ~ N(0, Q), Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]].
* Targets that leave the square keep going: they stay in the truth set and
  are detected like any other target. The square only bounds the initial
  positions and the clutter. Every tracker is scored against the same truth.
* Each target is detected independently with probability
  `detection_probability`; a detection is the true position plus
  N(0, sigma^2) noise per axis, with covariance R = sigma^2 I.
* Clutter: Poisson(clutter_mean) points per scan, uniform over the square,
  also with R = sigma^2 I.
* Detections of a scan are returned in a random order; `origin` holds the
  target index of each (-1 for clutter) so that references that know the
  truth (the clairvoyant bound) and the tests can use it. Trackers see only
  `z` and `R`.

Random draws, in this order, from `rng = numpy.random.default_rng(seed)`
--------------------------------------------------------------------------
1. `rng.uniform(-side/3, side/3, size=(n, 2))` initial positions (e, n).
2. `rng.normal(0, velocity_std, size=(n, 2))` initial velocities (ve, vn).
3. For each scan k = 0 .. n_scans-1:
   a. only if k > 0: `u = rng.standard_normal((n, 2, 2))` indexed
      [target, axis, (position, velocity)]; the process noise of target i on
      axis a is `L @ u[i, a]` with L the lower Cholesky factor of Q
      (`numpy.linalg.cholesky`); the state is moved by F, then the noise added;
   b. `rng.random(n) < detection_probability` which targets are detected;
   c. `rng.normal(0, sigma, size=(n, 2))` measurement noise, drawn for every
      target, used for the detected ones;
   d. `rng.poisson(clutter_mean)` the clutter count c;
   e. `rng.uniform(-side/2, side/2, size=(c, 2))` the clutter points;
   f. `rng.permutation(d + c)` the order: detections of detected targets
      in target order, then the clutter, are concatenated and taken in this
      order.

Named scenarios (seed 1 unless the benchmark is given another)
--------------------------------------------------------------
* `stonesoup-50`: 50 targets, 100 scans, sigma 5 m, detection probability 0.9,
  clutter mean 20 per scan, side 3000 m.
* `dense-200`: 200 targets, 40 scans, sigma 10 m, detection probability 0.75,
  clutter mean 200 per scan, side 3000 m.
* `ScenarioSpec.scaled(n)` (named `scaled-<n>`): n targets, 30 scans, sigma 5 m,
  detection probability 0.9, clutter mean 0.4 n per scan, side
  3000 * sqrt(n / 50) m, so that targets and clutter per km^2 are those of
  `stonesoup-50` (50 targets and 20 clutter points on 9 km^2).
  `scaled(50, n_scans=100)` generates exactly the data of `stonesoup-50`.

All scenarios share q = 0.05 m^2/s^3, dt = 1 s, velocity_std = 5 m/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

STONESOUP_50_SIDE = 3000.0


@dataclass(frozen=True)
class ScenarioSpec:
    """Parameters of one scenario; `generate(spec)` turns them into data."""

    name: str
    n_targets: int
    n_scans: int
    sigma: float
    detection_probability: float
    clutter_mean: float
    side: float = STONESOUP_50_SIDE
    q: float = 0.05
    dt: float = 1.0
    velocity_std: float = 5.0
    seed: int = 1

    @property
    def area(self) -> float:
        """Area of the square, m^2."""
        return self.side * self.side

    @property
    def clutter_density(self) -> float:
        """Expected clutter points per m^2 per scan."""
        return self.clutter_mean / self.area

    def with_seed(self, seed: int) -> ScenarioSpec:
        return replace(self, seed=seed)

    def with_scans(self, n_scans: int) -> ScenarioSpec:
        return replace(self, n_scans=n_scans)

    @classmethod
    def scaled(cls, n_targets: int, n_scans: int = 30, seed: int = 1) -> ScenarioSpec:
        """`stonesoup-50` scaled to n targets at the same target and clutter density.

        sigma 5 m, detection probability 0.9, clutter 0.4 per target per scan,
        side = 3000 m * sqrt(n / 50).
        """
        return cls(
            name=f"scaled-{n_targets}",
            n_targets=n_targets,
            n_scans=n_scans,
            sigma=5.0,
            detection_probability=0.9,
            clutter_mean=2.0 * n_targets / 5.0,  # 0.4 per target, exact in binary
            side=STONESOUP_50_SIDE * math.sqrt(n_targets / 50.0),
            seed=seed,
        )


STONESOUP_50 = ScenarioSpec(
    name="stonesoup-50",
    n_targets=50,
    n_scans=100,
    sigma=5.0,
    detection_probability=0.9,
    clutter_mean=20.0,
)

DENSE_200 = ScenarioSpec(
    name="dense-200",
    n_targets=200,
    n_scans=40,
    sigma=10.0,
    detection_probability=0.75,
    clutter_mean=200.0,
)

SCENARIOS: dict[str, ScenarioSpec] = {s.name: s for s in (STONESOUP_50, DENSE_200)}


@dataclass(frozen=True)
class Scan:
    """One scan: the truth at `time` and the detections made then.

    truth_ids (k,) int64, truth (k, 4) [e, n, ve, vn], z (N, 2) m,
    R (N, 2, 2) m^2, origin (N,) int64 target index or -1 for clutter.
    """

    index: int
    time: float
    truth_ids: np.ndarray
    truth: np.ndarray
    z: np.ndarray
    R: np.ndarray
    origin: np.ndarray

    @property
    def n_detections(self) -> int:
        return int(self.z.shape[0])


@dataclass(frozen=True)
class Scenario:
    spec: ScenarioSpec
    scans: tuple[Scan, ...]

    def __len__(self) -> int:
        return len(self.scans)

    def __iter__(self):
        return iter(self.scans)


def process_noise_covariance(q: float, dt: float) -> np.ndarray:
    """Per-axis Q of the white-acceleration model over dt: [[position, velocity]]."""
    return q * np.array([[dt**3 / 3.0, dt**2 / 2.0], [dt**2 / 2.0, dt]])


def generate(spec: ScenarioSpec) -> Scenario:
    """Generate the scenario's truth and detections, deterministic in `spec.seed`."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_targets
    chol = np.linalg.cholesky(process_noise_covariance(spec.q, spec.dt))
    third = spec.side / 3.0
    position = rng.uniform(-third, third, size=(n, 2))
    velocity = rng.normal(0.0, spec.velocity_std, size=(n, 2))
    truth_ids = np.arange(n, dtype=np.int64)
    scans = []
    for k in range(spec.n_scans):
        if k > 0:
            position, velocity = _move(position, velocity, spec.dt, chol, rng)
        scans.append(_scan(k, spec, truth_ids, position, velocity, rng))
    return Scenario(spec=spec, scans=tuple(scans))


def _move(position, velocity, dt, chol, rng):
    """One exact NCV step with noise `chol @ u` per target and axis."""
    u = rng.standard_normal((position.shape[0], 2, 2))
    noise = np.einsum("ij,taj->tai", chol, u)
    return position + dt * velocity + noise[:, :, 0], velocity + noise[:, :, 1]


def _scan(k, spec, truth_ids, position, velocity, rng) -> Scan:
    n = spec.n_targets
    detected = rng.random(n) < spec.detection_probability
    noise = rng.normal(0.0, spec.sigma, size=(n, 2))
    n_clutter = int(rng.poisson(spec.clutter_mean))
    half = spec.side / 2.0
    clutter = rng.uniform(-half, half, size=(n_clutter, 2))
    z = np.concatenate([position[detected] + noise[detected], clutter])
    origin = np.concatenate(
        [truth_ids[detected], np.full(n_clutter, -1, dtype=np.int64)]
    )
    order = rng.permutation(z.shape[0])
    z = np.ascontiguousarray(z[order])
    R = np.zeros((z.shape[0], 2, 2))
    R[:, 0, 0] = R[:, 1, 1] = spec.sigma**2
    return Scan(
        index=k,
        time=k * spec.dt,
        truth_ids=truth_ids,
        truth=np.concatenate([position, velocity], axis=1),
        z=z,
        R=R,
        origin=origin[order],
    )
