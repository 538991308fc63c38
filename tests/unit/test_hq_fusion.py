"""HQ fusion: node tracks of two posts 20 km apart become one consistent picture.

Truth is simulated in post A's frame, which is also HQ's. Each post reports
every target it sees in its own ENU frame with an error made of a part common
to both posts (a shared map, clock or weather error: the same draw for both)
and an independent part; each post's covariance is honest about the sum. The
covariance intersection is checked against a plain NumPy/SciPy version here.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from pyproj import Transformer
from scipy.optimize import minimize_scalar
from scipy.stats import chi2

from hq.fusion import Fusion, FusionConfig
from hq.fusion.gating import gated_pairs, pair_distances
from hq.fusion.intersection import covariance_intersection
from hq.fusion.rows import frame_transform, node_states
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch

pytestmark = pytest.mark.unit

POST_A = EnuFrame(22.60, 14.20, 650.0)
POST_B = EnuFrame(22.60, 14.3946, 650.0)  # about 20 km east
T0 = 1767225600.0
COMMON = np.diag([9.0, 9.0, 0.04, 0.04])
COMMON[0, 1] = COMMON[1, 0] = 3.0  # east and north errors correlated too
INDEPENDENT = np.diag([4.0, 4.0, 0.09, 0.09])
REPORTED = COMMON + INDEPENDENT  # what each post says its error covariance is: honest


def a_to_b(points):
    """Points (n, 2) of A's ground plane in B's frame, through WGS84."""
    lat, lon, alt = POST_A.to_geodetic(points[:, 0], points[:, 1], np.zeros(len(points)))
    east, north, _ = POST_B.from_geodetic(lat, lon, alt)
    return np.column_stack([east, north])


def a_to_b_jacobian(at=(10_000.0, 0.0), step=10.0):
    """d(B east, north) / d(A east, north) by central differences: a fixed rotation here."""
    at = np.asarray(at)
    columns = [(a_to_b(np.array([at + d])) - a_to_b(np.array([at - d])))[0] / (2 * step)
               for d in (np.array([step, 0.0]), np.array([0.0, step]))]  # fmt: skip
    return np.column_stack(columns)


J_AB = a_to_b_jacobian()


def batch(frame, node, t, ids, x, P, classes=None, quality=0.95, status="confirmed"):
    """A TrackBatch of states x (n, 4) and covariances P (n, 4, 4) in `frame`."""
    lat, lon, _ = frame.to_geodetic(x[:, 0], x[:, 1], np.zeros(len(x)))
    tracks = [
        Track(track_id=int(i), time=t, lat=float(lat[k]), lon=float(lon[k]), alt=frame.alt,
              position_enu=tuple(x[k, :2]), velocity_enu=tuple(x[k, 2:]),
              position_covariance=P[k, :2, :2].tolist(),
              velocity_covariance=P[k, 2:, 2:].tolist(),
              target_class=(classes or {}).get(int(i), "unknown"), status=status,
              quality=quality, hits=20)
        for k, i in enumerate(ids)
    ]  # fmt: skip
    return TrackBatch(site="tummo", node=node, seq=int(t - T0), sent=t + 0.2,
                      frame_origin=(frame.lat, frame.lon, frame.alt), tracks=tracks)  # fmt: skip


@dataclass
class TwoPosts:
    """Targets moving at constant velocity in A's frame; all seen by A, the first n_both by B."""

    start: np.ndarray  # (n, 2)
    velocity: np.ndarray  # (n, 2)
    common: np.ndarray  # (n, 4) the error both posts share, one draw per target
    n_both: int

    @classmethod
    def make(cls, rng, n_both, only_a=0, spacing=400.0):
        n = n_both + only_a
        k = np.arange(n)
        start = np.column_stack([9000.0 + spacing * (k % 4), spacing * (k // 4)])
        heading = rng.uniform(0, 2 * np.pi, n)
        velocity = rng.uniform(0.5, 2.0, n)[:, None] * np.column_stack([np.cos(heading),
                                                                       np.sin(heading)])
        common = rng.multivariate_normal(np.zeros(4), COMMON, n)
        return cls(start, velocity, common, n_both)

    def truth(self, t):
        return np.column_stack([self.start + self.velocity * (t - T0), self.velocity])

    def estimates(self, rng, post, t, which):
        """The post's estimates of targets `which` at t, in its own frame, and its covariances."""
        error = self.common[which] + rng.multivariate_normal(np.zeros(4), INDEPENDENT, len(which))
        x = self.truth(t)[which] + error
        P = np.tile(REPORTED, (len(which), 1, 1))
        if post == "a":
            return x, P
        # The same physical points and velocities in B's frame (the map is affine).
        J = np.kron(np.eye(2), J_AB)
        in_b = np.column_stack([a_to_b(x[:, :2]), x[:, 2:] @ J_AB.T])
        return in_b, J @ P @ J.T


def config(**changes):
    return FusionConfig(origin=(POST_A.lat, POST_A.lon, POST_A.alt), **changes)


# --- covariance intersection against an independent reference --------------------------


def ci_cost(Pa, Pb, criterion):
    """The criterion CI minimises, as a function of omega: trace or log det of the fused P."""
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)

    def cost(omega):
        P = np.linalg.inv(omega * Ia + (1 - omega) * Ib)
        return np.trace(P) if criterion == "trace" else np.linalg.slogdet(P)[1]

    return cost


def reference_ci(xa, Pa, xb, Pb, criterion):
    """Covariance intersection with SciPy's bounded scalar minimiser over omega."""
    cost = ci_cost(Pa, Pb, criterion)
    found = minimize_scalar(cost, bounds=(0, 1), method="bounded", options={"xatol": 1e-12})
    omega = min([found.x, 0.0, 1.0], key=cost)  # the bounded search never lands on an end
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)
    P = np.linalg.inv(omega * Ia + (1 - omega) * Ib)
    return P @ (omega * Ia @ xa + (1 - omega) * Ib @ xb), P, omega


def random_covariance(rng):
    A = rng.normal(size=(4, 4)) * rng.uniform(0.1, 5.0, 4)
    return A @ A.T + 0.01 * np.eye(4)


@pytest.mark.parametrize("criterion", ["determinant", "trace"])
def test_covariance_intersection_matches_a_scipy_reference(criterion):
    rng = np.random.default_rng(3)
    n = 300
    Pa = np.array([random_covariance(rng) for _ in range(n)])
    Pb = np.array([random_covariance(rng) for _ in range(n)])
    xa, xb = rng.normal(0, 10, (n, 4)), rng.normal(0, 10, (n, 4))
    x, P, omega = covariance_intersection(xa, Pa, xb, Pb, criterion == "trace")
    interior = 0
    for k in range(n):
        ref_x, ref_P, ref_omega = reference_ci(xa[k], Pa[k], xb[k], Pb[k], criterion)
        # The criterion is flat at its minimum, so a search on its values (the
        # reference's) pins omega down to about 1e-7 only: ours must be as good.
        cost = ci_cost(Pa[k], Pb[k], criterion)
        assert cost(omega[k]) <= cost(ref_omega) + 1e-9 * abs(cost(ref_omega))
        assert omega[k] == pytest.approx(ref_omega, abs=1e-5)
        assert x[k] == pytest.approx(ref_x, abs=1e-5)
        assert P[k] == pytest.approx(ref_P, abs=1e-6 * np.abs(ref_P).max())
        interior += 0.0 < ref_omega < 1.0
    assert interior > n // 2  # the comparison exercised the search, not just its ends


# --- gating: the grid search finds exactly the pairs of a comparison of all pairs -----------


def gating_scene(seed, newer):
    """Node track rows and a table of global tracks over 60 km x 10 km: rows near some
    global tracks, global tracks older (some coasting for long), some newer if `newer`, some
    without a usable velocity or with a vague position, and a subset of slots as candidates."""
    rng = np.random.default_rng(seed)
    T, n_globals, n_rows = 1.8e9, 900, 150
    gx = np.column_stack([rng.uniform(0, 60_000, n_globals), rng.uniform(0, 10_000, n_globals),
                          rng.normal(0, 8, (n_globals, 2))])  # fmt: skip
    gP = np.array([random_covariance(rng) for _ in range(n_globals)])
    gt = T - rng.choice([0.5, 2.0, 30.0], n_globals, p=[0.6, 0.3, 0.1]) * rng.random(n_globals)
    gt[rng.random(n_globals) < 0.1 * newer] += 2.0  # newer than the rows
    vague = rng.random(n_globals) < 0.05
    gP[vague, 2:, 2:] = np.eye(2) * 2500.0  # no velocity
    gP[rng.random(n_globals) < 0.05, :2, :2] *= 400.0
    seen = rng.choice(n_globals, n_rows, replace=False)
    x = gx[seen] + rng.normal(0, 1, (n_rows, 4)) * [3.0, 3.0, 0.5, 0.5]
    x[: n_rows // 5, :2] = rng.uniform(0, 60_000, (n_rows // 5, 2))  # rows near nothing known
    P = np.array([random_covariance(rng) for _ in range(n_rows)])
    t = T - 0.5 * rng.random(n_rows)
    candidates = np.sort(rng.choice(n_globals, 700, replace=False))
    for k, g in zip(range(n_rows - 30, n_rows), candidates[:30], strict=True):
        # Fast ones reach farther than most global tracks, slower ones about as far.
        fast = k % 2 == 0
        edge_of_gate(k, g, x, P, t, gx, gP, gt, rng, 60.0 if fast else 25.0,
                     400.0 if fast else 100.0)  # fmt: skip
    return x, P, t, gx, gP, gt, candidates


def edge_of_gate(k, g, x, P, t, gx, gP, gt, rng, speed, variance, q=0.1):
    """Row k just inside the gate of slot g, which is 2 s older and moves at `speed`, along
    the long axis of a thin position covariance of the largest `variance`: as far apart as
    two tracks that gate can be."""
    gt[g] = t[k] - 2.0
    heading = rng.uniform(0, 2 * np.pi)
    gx[g, 2:] = x[k, 2:] = speed * np.array([np.cos(heading), np.sin(heading)])
    c, s = np.cos(heading + 1.0), np.sin(heading + 1.0)
    thin = np.array([[c, -s], [s, c]]) @ np.diag([variance, 0.25]) @ np.array([[c, s], [-s, c]])
    gP[g] = np.diag([0.0, 0.0, 0.04, 0.04])
    gP[g, :2, :2] = thin
    P[k] = np.diag([1.0, 1.0, 0.04, 0.04])
    F = np.eye(4)
    F[0, 2] = F[1, 3] = 2.0
    Q = q * np.kron([[8 / 3, 2.0], [2.0, 2.0]], np.eye(2))  # white acceleration over 2 s
    S = P[k] + F @ gP[g] @ F.T + Q
    M = np.linalg.inv(np.linalg.inv(S)[:2, :2])  # what the position difference is held to
    values, vectors = np.linalg.eigh(M)
    x[k, :2] = (F @ gx[g])[:2] + np.sqrt(0.98 * chi2.ppf(0.9999, 4) * values[1]) * vectors[:, 1]


@pytest.mark.parametrize(("seed", "newer"), [(0, True), (1, False), (2, True)])
def test_gated_pairs_are_those_of_comparing_every_pair(seed, newer):
    x, P, t, gx, gP, gt, candidates = scene = gating_scene(seed, newer)
    q, informative, gate2, gate4 = 0.1, 25.0, chi2.ppf(0.9999, 2), chi2.ppf(0.9999, 4)
    rows, columns = np.meshgrid(np.arange(len(x)), np.arange(len(candidates)), indexing="ij")
    rows, columns = rows.ravel(), columns.ravel()
    d2, dof = pair_distances(x, P, t, rows, gx, gP, gt, candidates[columns], q, informative)
    inside = d2 <= np.where(dof == 4, gate4, gate2)
    pair_row, pair_candidate, pair_d2 = gated_pairs(*scene, q, informative, gate2, gate4)
    assert pair_row.tolist() == rows[inside].tolist()  # by row, then candidate
    assert pair_candidate.tolist() == columns[inside].tolist()
    assert pair_d2.tolist() == d2[inside].tolist()
    assert inside.sum() > 100 and len(set(pair_row.tolist())) < inside.sum()  # rows with two
    edge = (rows >= len(x) - 30) & (columns == rows - (len(x) - 30))
    assert inside[edge].all() and (d2[edge] > 0.97 * gate4).all()


def test_covariance_intersection_agrees_with_stone_soup_at_the_same_weight():
    gaussian = pytest.importorskip("stonesoup.mixturereducer.gaussianmixture")
    from stonesoup.types.state import GaussianState

    rng = np.random.default_rng(4)
    for _ in range(20):
        Pa, Pb = random_covariance(rng), random_covariance(rng)
        xa, xb = rng.normal(0, 10, 4), rng.normal(0, 10, 4)
        x, P, omega = covariance_intersection(xa[None], Pa[None], xb[None], Pb[None], False)
        theirs = gaussian.CovarianceIntersection.merge_components(
            GaussianState(xa[:, None], Pa), GaussianState(xb[:, None], Pb),
            weights=[omega[0], 1.0 - omega[0]])  # fmt: skip
        assert x[0] == pytest.approx(np.asarray(theirs.state_vector, float).ravel(), abs=1e-6)
        assert P[0] == pytest.approx(np.asarray(theirs.covar, float), rel=1e-6, abs=1e-9)


# --- two posts, one picture -------------------------------------------------------------

CYCLES = 30
RESTART_AT = 12  # A restarts its tracks of target 0 (seen by both) and 6 (seen by A only)


@pytest.fixture(scope="module")
def two_post_run():
    """Six targets seen by both posts and one by A only, 30 s at 1 Hz; B 0.3 s after A."""
    rng = np.random.default_rng(7)
    scene = TwoPosts.make(rng, n_both=6, only_a=1)
    fusion = Fusion(config())
    everyone, both = np.arange(7), np.arange(6)
    updates, target_of = [], {}
    for cycle in range(CYCLES):
        ids_a = 100 + everyone
        if cycle >= RESTART_AT:
            ids_a = np.where(np.isin(everyone, [0, 6]), 150 + everyone, ids_a)
        for post, ids, which, lag in (("a", ids_a, everyone, 0.0), ("b", 200 + both, both, 0.3)):
            t = T0 + cycle + lag
            x, P = scene.estimates(rng, post, t, which)
            frame = POST_A if post == "a" else POST_B
            updates.append(fusion.ingest(batch(frame, post, t, ids, x, P), received=t + 0.5))
            for local_id, target in zip(ids, which, strict=True):
                target_of[(f"tummo/{post}", int(local_id))] = int(target)
    return fusion, updates, target_of, scene


def test_tracks_of_one_object_from_two_posts_become_one_global_track(two_post_run):
    fusion, _, target_of, _ = two_post_run
    tracks = fusion.snapshot()
    assert len(tracks) == 7  # from 13 node tracks
    for track in tracks:
        targets = {target_of[source] for source in track.sources}
        assert len(targets) == 1
        target = targets.pop()
        expected_nodes = {"tummo/a", "tummo/b"} if target < 6 else {"tummo/a"}
        assert {node for node, _ in track.sources} == expected_nodes
        assert track.status == "confirmed"


def test_global_ids_never_flicker(two_post_run):
    _, updates, target_of, _ = two_post_run
    ids_of_target: dict[int, set] = {}
    for update in updates:
        history = update.history
        for local_id, gid in zip(history.local_id, history.global_id, strict=True):
            if gid >= 0:
                ids_of_target.setdefault(target_of[(history.node, int(local_id))], set()).add(gid)
    assert sorted(ids_of_target) == list(range(7))
    assert all(len(ids) == 1 for ids in ids_of_target.values())  # no identity switch at all
    assert len(set().union(*ids_of_target.values())) == 7  # and no id shared by two targets
    created = [gid for update in updates for gid in update.created]
    assert sorted(created) == sorted(set().union(*ids_of_target.values()))
    assert not any(update.ended for update in updates)


def test_a_restarted_node_track_relinks_to_its_global_id(two_post_run):
    fusion, updates, _, _ = two_post_run
    first_id = {}
    for update in updates:
        h = update.history
        for local_id, gid in zip(h.local_id, h.global_id, strict=True):
            if gid >= 0:
                first_id.setdefault((h.node, int(local_id)), int(gid))
    for target in (0, 6):  # seen by both posts, and by A alone (its global track coasts)
        assert first_id[("tummo/a", 150 + target)] == first_id[("tummo/a", 100 + target)]
    by_id = {track.id: track for track in fusion.snapshot()}
    assert ("tummo/a", 156) in by_id[first_id[("tummo/a", 106)]].sources
    assert ("tummo/a", 106) not in by_id[first_id[("tummo/a", 106)]].sources
    assert fusion.counters.merged >= 6 + 2  # B's six tracks, then A's two restarts


def test_fused_tracks_follow_the_truth(two_post_run):
    fusion, _, target_of, scene = two_post_run
    for track in fusion.snapshot():
        truth = scene.truth(track.time)[target_of[track.sources[0]]]
        error = track.x[:2] - truth[:2]
        assert error @ np.linalg.solve(track.P[:2, :2], error) < chi2.ppf(0.9999, 2)


# --- consistency with correlated errors ---------------------------------------------------


def naive_fusion(xa, Pa, xb, Pb):
    """Information fusion as if the two posts' errors were independent: what CI avoids."""
    P = np.linalg.inv(np.linalg.inv(Pa) + np.linalg.inv(Pb))
    return P @ (np.linalg.solve(Pa, xa) + np.linalg.solve(Pb, xb)), P


def test_fused_covariance_is_consistent_where_naive_fusion_is_overconfident():
    """NEES of the fused position over Monte Carlo runs, with an error common to both posts.

    Mean NEES of n samples of 2 dof lies in chi2(2n)/n; covariance intersection
    must not exceed the upper bound (lower is conservative, which is its price),
    while fusing the same two tracks as if independent must.
    """
    rng = np.random.default_rng(2026)
    runs, n_targets, cycles = 250, 4, 6
    J_BA = np.linalg.inv(J_AB)
    nees_ci, nees_naive = [], []
    for _ in range(runs):
        scene = TwoPosts.make(rng, n_targets)
        fusion = Fusion(config())
        which = np.arange(n_targets)
        for cycle in range(cycles):
            t = T0 + cycle
            x_a, P_a = scene.estimates(rng, "a", t, which)
            x_b, P_b = scene.estimates(rng, "b", t, which)
            fusion.ingest(batch(POST_A, "a", t, 100 + which, x_a, P_a), t)
            fusion.ingest(batch(POST_B, "b", t, 200 + which, x_b, P_b), t)
        truth = scene.truth(t)
        for track in fusion.snapshot():
            assert len(track.sources) == 2
            target = int(track.sources[0][1]) - 100
            error = track.x[:2] - truth[target, :2]
            nees_ci.append(error @ np.linalg.solve(track.P[:2, :2], error))
        # The last estimates of both posts, B's taken into A's frame independently of hq.
        for k in range(n_targets):
            b_in_a = J_BA @ (x_b[k, :2] - a_to_b(np.zeros((1, 2)))[0])
            x, P = naive_fusion(x_a[k, :2], P_a[k, :2, :2], b_in_a,
                                J_BA @ P_b[k, :2, :2] @ J_BA.T)  # fmt: skip
            error = x - truth[k, :2]
            nees_naive.append(error @ np.linalg.solve(P, error))
    n = len(nees_ci)
    assert n == runs * n_targets
    low, high = chi2.ppf([0.0005, 0.9995], 2 * n) / n
    assert np.mean(nees_naive) > high  # the test can fail: independence is overconfident here
    assert np.mean(nees_ci) <= high
    assert np.mean(nees_ci) > 0.5 * low  # conservative, but not uselessly so


# --- life cycle, late data, hysteresis ------------------------------------------------------


def feed(fusion, scene, rng, cycles, start=0, posts=("a", "b"), which=None, shift_b=None):
    """Cycles of both posts at 1 Hz; `shift_b` (cycle -> (n, 2) m in A's frame) moves B's view."""
    which = np.arange(scene.start.shape[0]) if which is None else which
    updates = []
    for cycle in range(start, start + cycles):
        t = T0 + cycle
        for post in posts:
            x, P = scene.estimates(rng, post, t, which)
            if post == "b" and shift_b is not None and cycle in shift_b:
                x[:, :2] += shift_b[cycle] @ J_AB.T
            frame, base = (POST_A, 100) if post == "a" else (POST_B, 200)
            updates.append(fusion.ingest(batch(frame, post, t, base + which, x, P), t + 0.5))
    return updates


def test_a_track_whose_sources_went_stale_coasts_then_ends():
    rng = np.random.default_rng(11)
    scene = TwoPosts.make(rng, 1)
    fusion = Fusion(config(coast_after=5.0, end_after=30.0))
    feed(fusion, scene, rng, 8)
    feed(fusion, scene, rng, 6, start=8, posts=("a",))  # B stops seeing it
    last = T0 + 13
    (track,) = fusion.snapshot()
    assert track.status == "confirmed" and track.sources == (("tummo/a", 100),)
    assert fusion.tick(last + 1.0).updated == []
    coasting = fusion.tick(last + 5.5)
    assert coasting.updated == [track.id] and coasting.ended == []
    assert fusion.snapshot()[0].status == "coasting"
    ended = fusion.tick(last + 30.5)
    assert ended.ended == [track.id]
    assert fusion.snapshot() == []


def test_a_late_update_is_history_and_does_not_move_the_state():
    rng = np.random.default_rng(12)
    scene = TwoPosts.make(rng, 2)
    fusion = Fusion(config(late_tolerance=2.0))
    feed(fusion, scene, rng, 10)
    before = {track.id: track for track in fusion.snapshot()}
    which = np.arange(2)
    t_late = T0 + 9 - 6.0
    x, P = scene.estimates(rng, "a", t_late, which)
    update = fusion.ingest(batch(POST_A, "a", t_late, 100 + which, x, P), T0 + 10)
    after = {track.id: track for track in fusion.snapshot()}
    for gid, track in before.items():
        assert after[gid].time == track.time
        assert np.array_equal(after[gid].x, track.x) and np.array_equal(after[gid].P, track.P)
    h = update.history
    assert update.created == update.updated == update.ended == []
    assert h.late.all() and not h.fused.any() and (h.time == t_late).all()
    assert sorted(h.global_id) == sorted(before)
    assert np.allclose(h.x[:, :2], x[:, :2])  # the node's own estimate, kept

    # Slightly late (within the tolerance): fused at the global track's time, not earlier.
    t_recent = T0 + 9 - 0.5
    x, P = scene.estimates(rng, "a", t_recent, which)
    update = fusion.ingest(batch(POST_A, "a", t_recent, 100 + which, x, P), T0 + 10)
    assert update.history.fused.all() and not update.history.late.any()
    for track in fusion.snapshot():
        assert track.time == before[track.id].time
        assert not np.array_equal(track.x, before[track.id].x)


@pytest.mark.parametrize("offset", [40.0, 2000.0])
def test_an_object_elsewhere_never_merges(offset):
    rng = np.random.default_rng(13)
    scene = TwoPosts.make(rng, 1)
    fusion = Fusion(config())
    shifts = {cycle: np.array([[offset, 0.0]]) for cycle in range(30)}
    updates = feed(fusion, scene, rng, 30, shift_b=shifts)
    tracks = fusion.snapshot()
    assert len(tracks) == 2
    assert sorted(len(track.sources) for track in tracks) == [1, 1]
    assert fusion.counters.merged == 0
    ids_a = {int(g) for u in updates if u.history.node == "tummo/a" for g in u.history.global_id}
    ids_b = {int(g) for u in updates if u.history.node == "tummo/b" for g in u.history.global_id}
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_one_outlier_does_not_break_a_link_but_a_lasting_divergence_does():
    rng = np.random.default_rng(14)
    scene = TwoPosts.make(rng, 1)
    fusion = Fusion(config(break_after_misses=3))
    feed(fusion, scene, rng, 10)
    (track,) = fusion.snapshot()
    jump = np.array([[300.0, 0.0]])
    updates = feed(fusion, scene, rng, 1, start=10, shift_b={10: jump})
    (after,) = fusion.snapshot()
    assert after.id == track.id and updates[1].history.global_id.tolist() == [track.id]
    assert not updates[1].history.fused.any()  # kept, not fused
    assert np.linalg.norm(after.x[:2] - scene.truth(after.time)[0, :2]) < 20.0
    updates = feed(fusion, scene, rng, 10, start=11)
    assert [t.id for t in fusion.snapshot()] == [track.id]
    assert not any(u.created for u in updates)

    # B's track wanders off for good: after three misses it leaves for a track of its own.
    updates = feed(fusion, scene, rng, 5, start=21, shift_b={c: jump for c in range(21, 26)})
    b_updates = updates[1::2]
    assert [u.history.global_id[0] == track.id for u in b_updates] == [True] * 2 + [False] * 3
    assert sum(len(u.created) for u in updates) == 1
    assert fusion.counters.links_broken == 1
    assert sorted(len(t.sources) for t in fusion.snapshot()) == [1, 1]


def send(fusion, scene, rng, node, t, ids, which, shift=(0.0, 0.0)):
    """One batch from `node` ("a" in A's frame, else in B's) of targets `which`, moved by shift."""
    post, frame = ("a", POST_A) if node == "a" else ("b", POST_B)
    x, P = scene.estimates(rng, post, t, np.asarray(which))
    x[:, :2] += np.asarray(shift) @ (np.eye(2) if post == "a" else J_AB.T)
    return fusion.ingest(batch(frame, node, t, ids, x, P), t)


def test_a_second_global_track_of_one_object_merges_into_the_first():
    """B's track starts 300 m off (a global track of its own), then finds the object."""
    rng = np.random.default_rng(17)
    scene = TwoPosts.make(rng, 1)
    fusion = Fusion(config(merge_updates=3))
    merges = {}
    for cycle in range(10):
        t = T0 + cycle
        send(fusion, scene, rng, "a", t, [100], [0])
        update = send(fusion, scene, rng, "b", t, [200], [0], (300.0 if cycle < 5 else 0.0, 0.0))
        merges.update(update.merged)
        if cycle == 4:
            first, second = (track.id for track in fusion.snapshot())
    assert merges == {second: first}  # on B's third consistent update, cycle 7
    (track,) = fusion.snapshot()
    assert track.id == first and track.sources == (("tummo/a", 100), ("tummo/b", 200))


def test_a_shared_source_switches_only_after_repeated_better_proposals():
    """B's track of object 0 (shared with A) swaps onto object 1, which C tracks 60 m away."""
    rng = np.random.default_rng(18)
    scene = TwoPosts.make(rng, 2, spacing=60.0)
    scene.velocity[:] = (1.0, 0.5)  # keep them 60 m apart
    fusion = Fusion(config(switch_updates=3, switch_margin=4.0))
    updates = []
    for cycle in range(16):
        t = T0 + cycle
        send(fusion, scene, rng, "a", t, [100], [0])
        updates.append(send(fusion, scene, rng, "b", t, [200], [0 if cycle < 10 else 1]))
        send(fusion, scene, rng, "c", t, [301], [1])
    one, two = fusion.snapshot()
    seen_by_b = [int(u.history.global_id[0]) for u in updates]
    # Hidden while its merge is confirmed, then A's; switched on the third swapped update.
    assert seen_by_b == [-1] * 2 + [one.id] * 8 + [one.id] * 2 + [two.id] * 4
    assert not updates[10].history.fused.any() and not updates[11].history.fused.any()
    assert one.sources == (("tummo/a", 100),)
    assert two.sources == (("tummo/b", 200), ("tummo/c", 301))
    assert fusion.counters.switched == 1 and fusion.counters.links_broken == 0


def test_the_class_is_a_vote_weighted_by_quality():
    rng = np.random.default_rng(15)
    scene = TwoPosts.make(rng, 1)
    fusion = Fusion(config())
    which = np.arange(1)
    for cycle in range(5):
        t = T0 + cycle
        for post, frame, node_id, cls, quality in (("a", POST_A, 100, "person", 0.9),
                                                   ("b", POST_B, 200, "vehicle", 0.6)):
            x, P = scene.estimates(rng, post, t, which)
            fusion.ingest(batch(frame, post, t, [node_id], x, P, {node_id: cls}, quality), t)
    assert fusion.snapshot()[0].target_class == "person"
    x, P = scene.estimates(rng, "b", T0 + 5, which)
    fusion.ingest(batch(POST_B, "b", T0 + 5, [200], x, P, {200: "vehicle"}, 0.99), T0 + 5)
    x, P = scene.estimates(rng, "a", T0 + 5, which)
    fusion.ingest(batch(POST_A, "a", T0 + 5, [100], x, P, {100: "unknown"}, 0.99), T0 + 5)
    assert fusion.snapshot()[0].target_class == "vehicle"


def test_a_node_votes_with_its_current_track_not_the_one_it_replaced():
    # A post's track of a camel was a person for a few seconds, then the post restarted it
    # under a new id, sure it is an animal. The old id's vote must not outlast it: HQ's
    # class is what each node says now.
    rng = np.random.default_rng(16)
    scene = TwoPosts.make(rng, 0, only_a=1)
    fusion = Fusion(config())
    which = np.arange(1)
    for cycle in range(20):
        t = T0 + cycle
        node_id, cls, quality = (100, "person", 0.95) if cycle < 6 else (150, "animal", 0.5)
        x, P = scene.estimates(rng, "a", t, which)
        fusion.ingest(batch(POST_A, "a", t, [node_id], x, P, {node_id: cls}, quality), t)
    (track,) = fusion.snapshot()
    assert track.sources == (("tummo/a", 150),), "re-linked to the same global track"
    assert track.target_class == "animal"


# --- frames and bad input -------------------------------------------------------------------


def pyproj_enu(frame):
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lat_0={frame.lat} +lon_0={frame.lon} +h_0={frame.alt}"
    )


def test_a_node_track_lands_in_the_hq_frame_exactly():
    """B's track in HQ's (A's) frame, against pyproj: position, velocity and covariance."""
    to_b, to_a = pyproj_enu(POST_B), pyproj_enu(POST_A)

    def b_to_a(east, north):
        lon, lat, h = to_b.transform(east, north, 0.0, direction="INVERSE")
        e, n, _ = to_a.transform(lon, lat, h)
        return np.array([e, n])

    x = np.array([[-9_000.0, 2_500.0, 1.5, -0.7]])
    L = np.array([[2.0, 0.0, 0.0, 0.0], [1.2, 1.5, 0.0, 0.0], [0, 0, 0.4, 0], [0, 0, 0.1, 0.3]])
    P = (L @ L.T)[None]
    P[0, :2, 2:] = P[0, 2:, :2] = 0.0  # the wire carries no cross terms
    fusion = Fusion(config())
    wire = batch(POST_B, "b", T0, [7], x, P)
    fusion.ingest(wire, T0)
    (track,) = fusion.snapshot()
    step = 1.0
    J = np.column_stack([(b_to_a(x[0, 0] + step, x[0, 1]) - b_to_a(x[0, 0] - step, x[0, 1])),
                         (b_to_a(x[0, 0], x[0, 1] + step) - b_to_a(x[0, 0], x[0, 1] - step))]
                        ) / (2 * step)  # fmt: skip
    assert track.x[:2] == pytest.approx(b_to_a(x[0, 0], x[0, 1]), abs=1e-3)
    assert track.x[2:] == pytest.approx(J @ x[0, 2:], abs=1e-6)
    J4 = np.kron(np.eye(2), J)
    assert track.P == pytest.approx(J4 @ P[0] @ J4.T, rel=1e-6, abs=1e-9)
    assert (track.lat, track.lon) == pytest.approx((wire.tracks[0].lat, wire.tracks[0].lon),
                                                   abs=1e-8)  # fmt: skip


def test_node_states_are_the_wire_numbers_turned_into_the_hq_frame():
    """Against plain NumPy: symmetric parts, positive definiteness, unknown velocities,
    and the frame change, on numbers with holes, asymmetric and indefinite covariances."""
    rng = np.random.default_rng(5)
    n, unknown = 500, 2500.0
    numbers = rng.normal(0, 1, (n, 15)) * [1, 1, 3000, 3000, 5, 5, *[2] * 8, 1]
    numbers[:, [6, 9, 10, 13]] = np.abs(numbers[:, [6, 9, 10, 13]]) * 4  # mostly definite
    holes = rng.random((n, 15)) < 0.03
    numbers[holes] = rng.choice([np.nan, np.inf], holes.sum())
    M, c = frame_transform((POST_B.lat, POST_B.lon, POST_B.alt), POST_A)
    x, P, up, usable, no_velocity = node_states(numbers, M, c, unknown)

    def symmetric(entries):
        A = entries.reshape(n, 2, 2)
        return 0.5 * (A + A.transpose(0, 2, 1))

    def definite(A):
        with np.errstate(invalid="ignore"):
            return (A[:, 0, 0] > 0) & (np.linalg.det(A) > 0)

    position_cov, velocity_cov = symmetric(numbers[:, 6:10]), symmetric(numbers[:, 10:14])
    expected_usable = np.isfinite(numbers[:, [1, 2, 3, 6, 7, 8, 9]]).all(1) & definite(
        position_cov)  # fmt: skip
    expected_unknown = ~(np.isfinite(numbers[:, [4, 5, 10, 11, 12, 13]]).all(1)
                         & definite(velocity_cov))  # fmt: skip
    assert usable.tolist() == expected_usable.tolist()
    assert no_velocity.tolist() == expected_unknown.tolist()
    assert 0.6 < usable.mean() < 0.95 and 0.2 < no_velocity.mean() < 0.6
    velocity = np.where(expected_unknown[:, None], 0.0, numbers[:, 4:6])
    velocity_cov[expected_unknown] = unknown * np.eye(2)
    J, ok = M[:2, :2], expected_usable
    assert x[ok, :2] == pytest.approx(numbers[ok, 2:4] @ J.T + c[:2], rel=1e-13)
    assert x[ok, 2:] == pytest.approx(velocity[ok] @ J.T, rel=1e-13, abs=1e-13)
    assert up[ok] == pytest.approx(numbers[ok, 2:4] @ M[2, :2] + c[2], rel=1e-12)
    assert P[ok, :2, :2] == pytest.approx(J @ position_cov[ok] @ J.T, rel=1e-12, abs=1e-12)
    assert P[ok, 2:, 2:] == pytest.approx(J @ velocity_cov[ok] @ J.T, rel=1e-12, abs=1e-12)
    assert not P[:, :2, 2:].any() and not P[:, 2:, :2].any()


def test_bad_tracks_are_counted_and_the_rest_fused():
    rng = np.random.default_rng(16)
    scene = TwoPosts.make(rng, 4)
    x, P = scene.estimates(rng, "a", T0, np.arange(4))
    P[1, 0, 0] = -1.0  # not a covariance
    x[2, 2] = np.nan  # no velocity: still fused, on position
    wire = batch(POST_A, "a", T0, [100, 101, 102, 102], x, P)  # and one id twice
    tracks = list(wire.tracks)  # lat and lon pass the wire's checks, the ENU position not
    tracks[0] = tracks[0].model_copy(update={"position_enu": (np.nan, 0.0)})
    fusion = Fusion(config())
    update = fusion.ingest(wire.model_copy(update={"tracks": tracks}), T0)
    assert fusion.counters.rejected == 3 and fusion.counters.without_velocity == 1
    assert len(update.created) == 1 and len(fusion.snapshot()) == 1
    assert fusion.snapshot()[0].P[2, 2] == pytest.approx(50.0**2)


def test_config_refuses_nonsense():
    with pytest.raises(ValueError, match="coast_after"):
        FusionConfig(coast_after=60.0, end_after=30.0)
    with pytest.raises(ValueError, match="merge_updates"):
        FusionConfig(merge_updates=0)
