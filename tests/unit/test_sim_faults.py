"""Faults do what they say, no more, and are counted; pymavlink judges the bytes."""

import numpy as np
import pytest
from pymavlink.dialects.v20 import ardupilotmega as dialect

from sim_hw.__main__ import main as sim_main
from sim_hw.faults import FaultConfig, FaultCounters, apply_faults, load_faults
from sim_hw.tlog import read_tlog
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "flight.tlog"
    assert sim_main(["generate", "--out", str(path), "--duration", "300", "--sysid", "4",
                     "--start", "1767225600"]) == 0  # fmt: skip
    return list(read_tlog(path))


def parsed(raw: bytes):
    parser = dialect.MAVLink(None)
    parser.robust_parsing = True
    messages = [m for m in parser.parse_buffer(raw) or [] if m.get_type() != "BAD_DATA"]
    return messages[0] if len(messages) == 1 else None


def seq(frame):
    return frame.raw[4]


def test_no_faults_changes_nothing(frames):
    assert apply_faults(frames, FaultConfig()) == frames


def test_random_loss_drops_about_its_share_and_keeps_the_rest_in_order(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(loss=0.1, seed=2), counters)
    n = len(frames)
    assert counters.lost == n - len(out)
    assert abs(counters.lost - 0.1 * n) < 4 * np.sqrt(n * 0.1 * 0.9)
    kept = iter(frames)
    assert all(any(f is g for g in kept) for f in out)  # an ordered subsequence


def test_bursts_lose_runs_of_frames_of_the_configured_mean_length(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(burst_start=0.01, burst_mean_frames=15, seed=5),
                       counters)  # fmt: skip
    survivors = {id(f) for f in out}
    lost = np.array([id(f) not in survivors for f in frames])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(int), [0]])))
    runs = edges[1::2] - edges[::2]
    assert lost.sum() == counters.burst_lost
    # Back-to-back bursts merge into one run, so runs are at least the mean long.
    assert len(runs) > 30 and 12 < runs.mean() < 25


def test_a_link_cut_loses_exactly_the_frames_in_its_window(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(cuts=[(100.0, 12.5)]), counters)
    start = frames[0].time
    inside = [f for f in frames if 100.0 <= f.time - start < 112.5]
    assert counters.cut == len(inside) > 0
    assert not [f for f in out if 100.0 <= f.time - start < 112.5]
    assert len(out) == len(frames) - len(inside)


def test_corruption_breaks_exactly_the_corrupted_frames(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(corrupt=0.05, seed=7), counters)
    # A changed message id leaves a frame pymavlink cannot check: it reports UNKNOWN_<id>.
    readable = [parsed(f.raw) for f in out]
    unreadable = sum(m is None or m.get_type().startswith("UNKNOWN") for m in readable)
    assert counters.corrupted > 0 and unreadable == counters.corrupted


def test_duplicates_arrive_twice_in_a_row(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(duplicate=0.02, seed=8), counters)
    repeats = sum(a.raw == b.raw for a, b in zip(out, out[1:], strict=False))
    assert counters.duplicated > 0 and repeats == counters.duplicated
    assert len(out) == len(frames) + counters.duplicated


def test_reordering_swaps_neighbours_and_keeps_send_times_in_order(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(reorder=0.02, seed=9), counters)
    # Within one component the sequence number steps by one; a swap of two frames of one
    # component shows as a step back (a swap across components shows in neither).
    backwards = 0
    for component in {f.compid for f in out}:
        mine = [f for f in out if f.compid == component]
        backwards += sum((seq(b) - seq(a)) % 256 > 128 for a, b in zip(mine, mine[1:],
                                                                       strict=False))  # fmt: skip
    assert counters.reordered > 0
    assert 0 < backwards <= counters.reordered
    assert sorted(f.raw for f in out) == sorted(f.raw for f in frames)
    assert all(a.time <= b.time for a, b in zip(out, out[1:], strict=False))


def test_gps_dropout_reports_no_fix_inside_the_window_only(frames):
    counters = FaultCounters()
    out = apply_faults(frames, FaultConfig(gps_dropouts=[(50.0, 20.0)]), counters)
    start = frames[0].time
    gps = [(f.time - start, f, parsed(f.raw)) for f in out if f.msgid == 24]
    inside = [m for t, _, m in gps if 50.0 <= t < 70.0]
    outside = [m for t, _, m in gps if not 50.0 <= t < 70.0]
    assert len(inside) == counters.gps_no_fix > 0
    assert all(m.fix_type == 0 and m.satellites_visible == 0 for m in inside)
    assert all(m.fix_type == 3 for m in outside)
    # The rewritten frames keep their sender and sequence number.
    originals = {f.time: f for f in frames if f.msgid == 24}
    assert all(seq(f) == seq(originals[f.time]) and f.sysid == 4 for _, f, _ in gps)


def test_a_clock_jump_shifts_utc_from_its_time_on(frames):
    out = apply_faults(frames, FaultConfig(clock_jumps=[(200.0, 3.0)]))
    start = frames[0].time
    for frame in (f for f in out if f.msgid == 2):
        message = parsed(frame.raw)
        offset = message.time_unix_usec / 1e6 - frame.time
        expected = 3.0 if frame.time - start >= 200.0 else 0.0
        assert offset == pytest.approx(expected, abs=1e-5)


def test_latency_delays_every_frame_and_arrival_order_follows_it(frames):
    out = apply_faults(frames, FaultConfig(latency_s=0.2, latency_jitter_s=0.05, seed=3))
    # A frame's bytes recur (sequence numbers wrap), so match each to its nearest send
    # time at or before its arrival minus the fixed latency.
    sent = {}
    for f in frames:
        sent.setdefault(f.raw, []).append(f.time)
    delays = []
    for f in out:
        earlier = [t for t in sent[f.raw] if t <= f.time - 0.2 + 1e-9]
        assert earlier, "a frame arrived sooner than the fixed latency"
        delays.append(f.time - max(earlier))
    mean_delay = np.mean([f.time for f in out]) - np.mean([f.time for f in frames])
    assert len(out) == len(frames) and 0.2 + 0.03 < mean_delay < 0.2 + 0.05
    assert max(delays) < 0.2 + 0.3
    assert all(a.time <= b.time for a, b in zip(out, out[1:], strict=False))


def test_the_same_seed_gives_the_same_run_and_another_seed_another(frames):
    plan = load_faults(PROJECT_ROOT / "configs" / "faults" / "poor-radio.toml")
    first, again = apply_faults(frames, plan), apply_faults(frames, plan)
    other = apply_faults(frames, plan.model_copy(update={"seed": plan.seed + 1}))
    assert [f.raw for f in first] == [f.raw for f in again]
    assert [f.raw for f in first] != [f.raw for f in other]
