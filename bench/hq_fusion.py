"""HQ fusion benchmark: `python -m bench hq_fusion [--json] [--cycles N] [--reference-cycles N]`.

Ten posts 15 km apart along a border, each with its own ENU frame, each
tracking 100 targets; neighbouring posts share 30 targets (730 objects in
all). Every post sends one TrackBatch of its 100 tracks per second, the posts'
cycles staggered; each estimate is the truth plus an error common to the
posts that see the object and an independent one, with honest covariances.

1. Throughput: node-track updates per second through `Fusion.ingest`, warm
   (kernels compiled, a first run done), the batches built beforehand, so the
   time is fusion's alone: over the whole run, over the steady state (after
   the first five cycles), and the median and 95th percentile per batch.
2. Reference, in the same process on the first `--reference-cycles` cycles:
   a straightforward Python/NumPy version of the same work per update (frame
   change through WGS84, a vectorised distance prefilter, then per pair:
   prediction to a common time and the Mahalanobis gate; one dense
   `linear_sum_assignment`; covariance intersection with omega by
   `scipy.optimize.minimize_scalar`), without the hysteresis and merge
   bookkeeping. Ratio = ours / reference on those same batches.
3. What came out: global tracks at the end against the 730 objects, and how
   many objects were ever split over two global ids or shared one.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import linear_sum_assignment, minimize_scalar
from scipy.stats import chi2

from bench import results
from hq.fusion import Fusion, FusionConfig
from hq.fusion.intersection import covariance_intersection
from wire.geo import EnuFrame, enu_axes
from wire.messages import Track, TrackBatch

T0 = 1767225600.0
N_POSTS, PER_POST, SHARED = 10, 100, 30
SPACING_M = 15_000.0
BASE = EnuFrame(22.60, 12.00, 650.0)  # post 0; the others east of it
COMMON = np.diag([9.0, 9.0, 0.04, 0.04])
INDEPENDENT = np.diag([4.0, 4.0, 0.09, 0.09])


# --- scenario ------------------------------------------------------------------------------


def posts() -> list[EnuFrame]:
    frames = []
    for k in range(N_POSTS):
        lat, lon, alt = BASE.to_geodetic(k * SPACING_M, 0.0, 0.0)
        frames.append(EnuFrame(float(lat), float(lon), BASE.alt))
    return frames


def scenario(cycles: int, seed: int = 1):
    """The batches in arrival order, and which object each (node, local id) is."""
    rng = np.random.default_rng(seed)
    frames = posts()
    stride = PER_POST - SHARED
    n_objects = stride * (N_POSTS - 1) + PER_POST
    # Objects along the border in post 0's frame: object j near post j // stride.
    start = np.column_stack([np.arange(n_objects) * SPACING_M / stride - 5_000.0,
                             rng.uniform(-5_000.0, 5_000.0, n_objects)])  # fmt: skip
    heading = rng.uniform(0, 2 * np.pi, n_objects)
    velocity = rng.uniform(0.5, 2.5, n_objects)[:, None] * np.column_stack(
        [np.cos(heading), np.sin(heading)])  # fmt: skip
    common = rng.multivariate_normal(np.zeros(4), COMMON, n_objects)
    reported = COMMON + INDEPENDENT
    batches, object_of = [], {}
    for cycle in range(cycles):
        for k, frame in enumerate(frames):
            seen = np.arange(k * stride, k * stride + PER_POST)
            t = T0 + cycle + 0.07 * k
            truth = np.column_stack([start[seen] + velocity[seen] * (t - T0), velocity[seen]])
            x = truth + common[seen] + rng.multivariate_normal(np.zeros(4), INDEPENDENT,
                                                                 seen.size)  # fmt: skip
            x_node, J = into_frame(x, frame)
            P = J @ reported @ J.T
            batches.append(node_batch(frame, f"post-{k}", cycle, t, 1000 * k + seen, x_node, P))
            object_of.update({(f"bench/post-{k}", 1000 * k + int(j)): int(j) for j in seen})
    return batches, object_of, n_objects


def into_frame(x: np.ndarray, frame: EnuFrame):
    """States in post 0's frame -> in `frame` (through WGS84), and the 4x4 rotation."""
    lat, lon, alt = BASE.to_geodetic(x[:, 0], x[:, 1], np.zeros(len(x)))
    east, north, _ = frame.from_geodetic(lat, lon, alt)
    rotation = np.array(enu_axes(frame.lat, frame.lon)) @ np.array(enu_axes(BASE.lat,
                                                                           BASE.lon)).T
    J = np.kron(np.eye(2), rotation[:2, :2])  # fmt: skip
    return np.column_stack([east, north, x[:, 2:] @ rotation[:2, :2].T]), J


def node_batch(frame, node, seq, t, ids, x, P) -> TrackBatch:
    lat, lon, _ = frame.to_geodetic(x[:, 0], x[:, 1], np.zeros(len(x)))
    tracks = [
        Track(track_id=int(i), time=t, lat=float(lat[k]), lon=float(lon[k]), alt=frame.alt,
              position_enu=(float(x[k, 0]), float(x[k, 1])),
              velocity_enu=(float(x[k, 2]), float(x[k, 3])),
              position_covariance=P[:2, :2].tolist(), velocity_covariance=P[2:, 2:].tolist(),
              target_class="person", status="confirmed", quality=0.9, hits=30)
        for k, i in enumerate(ids)
    ]  # fmt: skip
    return TrackBatch(site="bench", node=node, seq=seq, sent=t + 0.1,
                      frame_origin=(frame.lat, frame.lon, frame.alt), tracks=tracks)  # fmt: skip


# --- ours ----------------------------------------------------------------------------------


def run_ours(batches):
    """A fresh Fusion through all batches; seconds per batch, and its history."""
    fusion = Fusion(FusionConfig(origin=(BASE.lat, BASE.lon, BASE.alt)))
    seconds, updates = [], []
    for batch in batches:
        start = time.perf_counter()
        update = fusion.ingest(batch, received=batch.sent)
        seconds.append(time.perf_counter() - start)
        updates.append(update)
    return fusion, np.array(seconds), updates


def identity_errors(updates, object_of) -> dict:
    ids_of, objects_of = {}, {}
    for update in updates:
        h = update.history
        for local_id, gid in zip(h.local_id.tolist(), h.global_id.tolist(), strict=True):
            if gid >= 0:
                target = object_of[(h.node, local_id)]
                ids_of.setdefault(target, set()).add(gid)
                objects_of.setdefault(gid, set()).add(target)
    return {
        "objects_with_more_than_one_id": sum(len(v) > 1 for v in ids_of.values()),
        "ids_shared_by_objects": sum(len(v) > 1 for v in objects_of.values()),
    }


# --- reference: a per-pair loop ------------------------------------------------------------


class PerPairReference:
    """The same per-update work as `Fusion.ingest`, one pair at a time in Python/NumPy."""

    def __init__(self, frame: EnuFrame, q: float = 0.1, gate_probability: float = 0.9999):
        self.frame, self.q = frame, q
        self.gate = chi2.ppf(gate_probability, 4)
        self.x: list[np.ndarray] = []
        self.P: list[np.ndarray] = []
        self.t: list[float] = []

    def predict(self, x, P, dt):
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        Q = self.q * np.kron(np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]), np.eye(2))
        return F @ x, F @ P @ F.T + Q

    def to_hq(self, batch: TrackBatch, track: Track):
        node = EnuFrame(*batch.frame_origin)
        lat, lon, alt = node.to_geodetic(*track.position_enu, 0.0)
        east, north, _ = self.frame.from_geodetic(lat, lon, alt)
        rotation = np.array(enu_axes(self.frame.lat, self.frame.lon)) @ np.array(
            enu_axes(node.lat, node.lon)).T  # fmt: skip
        J = np.kron(np.eye(2), rotation[:2, :2])
        P = np.zeros((4, 4))
        P[:2, :2], P[2:, 2:] = track.position_covariance, track.velocity_covariance
        x = np.array([east, north, *(rotation[:2, :2] @ track.velocity_enu)])
        return x, J @ P @ J.T, track.time

    def ingest(self, batch: TrackBatch) -> None:
        rows = [self.to_hq(batch, track) for track in batch.tracks]
        cost = np.full((len(rows), max(len(self.x), 1)), 1e12)
        if self.x:
            positions = np.array(self.x)[:, :2]
            reach = self.gate * np.array([np.trace(P[:2, :2]) for P in self.P])
        for i, (x, P, t) in enumerate(rows):
            if not self.x:
                break
            # Only the pairs within a generous radius get the full algebra (as ours).
            near = np.sum((positions - x[:2]) ** 2, axis=1) < 4.0 * reach + 2500.0
            for g in np.flatnonzero(near):
                xg, Pg = self.predict(self.x[g], self.P[g], t - self.t[g])
                d = x - xg
                d2 = d @ np.linalg.solve(P + Pg, d)
                if d2 <= self.gate:
                    cost[i, g] = d2
        assigned = {}
        if self.x:
            for i, g in zip(*linear_sum_assignment(cost), strict=True):
                if cost[i, g] < 1e12:
                    assigned[i] = g
        for i, (x, P, t) in enumerate(rows):
            if i not in assigned:
                self.x.append(x)
                self.P.append(P)
                self.t.append(t)
                continue
            g = assigned[i]
            xg, Pg = self.predict(self.x[g], self.P[g], t - self.t[g])
            self.x[g], self.P[g] = ci(xg, Pg, x, P)
            self.t[g] = t


def ci(xa, Pa, xb, Pb):
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)
    found = minimize_scalar(lambda w: np.linalg.slogdet(np.linalg.inv(w * Ia + (1 - w) * Ib))[1],
                            bounds=(0.0, 1.0), method="bounded")  # fmt: skip
    w = found.x
    P = np.linalg.inv(w * Ia + (1 - w) * Ib)
    return P @ (w * Ia @ xa + (1 - w) * Ib @ xb), P


def ci_kernel_pairs_per_s(n: int = 20_000) -> float:
    rng = np.random.default_rng(5)
    A = rng.normal(size=(n, 4, 4))
    Pa = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(4)
    B = rng.normal(size=(n, 4, 4))
    Pb = B @ B.transpose(0, 2, 1) + 0.1 * np.eye(4)
    x = rng.normal(size=(n, 4))
    covariance_intersection(x[:10], Pa[:10], x[:10], Pb[:10], False)
    start = time.perf_counter()
    covariance_intersection(x, Pa, x, Pb, False)
    return n / (time.perf_counter() - start)


# --- report --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hq_fusion", description=__doc__)
    results.add_json_option(parser, "hq_fusion")
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--reference-cycles", type=int, default=2)
    args = parser.parse_args(argv)

    batches, object_of, n_objects = scenario(args.cycles)
    updates_total = sum(len(b.tracks) for b in batches)
    run_ours(batches[: 5 * N_POSTS])  # warm: kernels, caches, the allocator
    fusion, seconds, updates = run_ours(batches)
    steady = seconds[5 * N_POSTS:]
    steady_updates = sum(len(b.tracks) for b in batches[5 * N_POSTS:])

    prefix = batches[: args.reference_cycles * N_POSTS]
    prefix_updates = sum(len(b.tracks) for b in prefix)
    _, prefix_seconds, _ = run_ours(prefix)
    reference = PerPairReference(BASE)
    start = time.perf_counter()
    for batch in prefix:
        reference.ingest(batch)
    reference_s = time.perf_counter() - start
    ours_prefix_rate = prefix_updates / prefix_seconds.sum()
    reference_rate = prefix_updates / reference_s

    report = {
        **results.header("hq_fusion", argv, "numpy", "numba"),
        "scenario": {"posts": N_POSTS, "tracks_per_batch": PER_POST, "shared_by_neighbours":
                     SHARED, "objects": n_objects, "cycles": args.cycles,
                     "batches": len(batches), "updates": updates_total},  # fmt: skip
        "ours": {
            "updates_per_s": updates_total / seconds.sum(),
            "steady_updates_per_s": steady_updates / steady.sum(),
            "batch_ms_median": 1e3 * float(np.median(seconds)),
            "batch_ms_p95": 1e3 * float(np.percentile(seconds, 95)),
            "global_tracks_at_end": len(fusion.snapshot()),
            **identity_errors(updates, object_of),
            "ci_kernel_pairs_per_s": ci_kernel_pairs_per_s(),
        },
        "reference_per_pair_loop": {
            "cycles": args.reference_cycles,
            "updates": prefix_updates,
            "updates_per_s": reference_rate,
            "ours_updates_per_s_same_batches": ours_prefix_rate,
            "ratio_ours_to_reference": ours_prefix_rate / reference_rate,
            "global_tracks_at_end": len(reference.x),
        },
    }
    results.publish(format_report(report), report, "hq_fusion" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    s, ours, ref = report["scenario"], report["ours"], report["reference_per_pair_loop"]
    return "\n".join([
        f"HQ fusion: {s['posts']} posts x {s['tracks_per_batch']} tracks, {s['objects']} objects,"
        f" {s['cycles']} cycles = {s['updates']:,} node-track updates in {s['batches']} batches",
        f"  ours (warm)          {ours['updates_per_s']:>12,.0f} updates/s   steady "
        f"{ours['steady_updates_per_s']:,.0f}/s   batch median {ours['batch_ms_median']:.2f} ms"
        f"  p95 {ours['batch_ms_p95']:.2f} ms",
        f"  per-pair reference   {ref['updates_per_s']:>12,.0f} updates/s   (first "
        f"{ref['cycles']} cycles; ours on the same: {ref['ours_updates_per_s_same_batches']:,.0f}"
        f"/s, ratio {ref['ratio_ours_to_reference']:,.0f}x)",
        f"  CI kernel            {ours['ci_kernel_pairs_per_s']:>12,.0f} pairs/s",
        f"  global tracks at end {ours['global_tracks_at_end']} (objects {s['objects']}); "
        f"objects split over ids {ours['objects_with_more_than_one_id']}, "
        f"ids shared by objects {ours['ids_shared_by_objects']}; reference after "
        f"{ref['cycles']} cycles: {ref['global_tracks_at_end']} tracks",
    ])  # fmt: skip
