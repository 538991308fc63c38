"""Cursor-on-Target (CoT) events for TAK from HQ's fused tracks and distress alerts.

Pure functions: a record and the current time in, an `xml.etree.ElementTree`
event out (or a ValueError saying why the record cannot be one). Sending is
streamer.py's business.

Track events
    uid    ``<prefix>-track-<global id>``, the same for the track's whole life, so
           TAK moves one marker instead of drawing a new one per update.
    type   ``a-<affiliation>-<function>``. Affiliation is ``u`` (unknown) unless an
           operator set another; the function comes from the class (`CLASS_FUNCTIONS`),
           taken from the MIL-STD-2525 branch of the CoT type tree.
    how    ``m-f``: machine generated, fused from several sensors.
    time, start   the time of the track's state.
    stale  ``max(time, now) + stale_s`` while the track lives: TAK keeps the marker
           until the next refresh is overdue. An ended track is sent once more with
           ``stale = now`` (`removal`), which makes TAK drop it at once.
    point  lat, lon, hae (the track's WGS84 altitude); ce and le as described at
           `circular_error` and `track_event`.
    detail/track   course (degrees clockwise from north) and speed (m/s).

Distress alerts become TAK emergency events (``b-a-o-tbl``, the "911 Alert"
of the CoT alert branch) with a remarks text for search and rescue; a
lower-severity "possible stranded people, verify" (people found already
stationary) is a spot marker (``b-m-p-s-m``) with its remarks, not an
emergency. Other alert kinds are not exported: see `alert_event`.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf

from hq.affiliation import COT_IDENTITY, Affiliation
from hq.store.records import FusedTrack
from wire.geo import compass_course
from wire.messages import Alert, TargetClass, TrackStatus

# The CoT type after "a-<affiliation>-". Upper-case letters walk the MIL-STD-2525
# symbol hierarchy: G ground track, G-E-V ground equipment / vehicle, A air track.
# People stay plain ground tracks: every deeper function for people on foot in
# that tree is a military unit (infantry), and the people this system sees are
# mostly travellers and migrants; labelling them as combatants is exactly what
# the unknown affiliation is there to avoid. Their class is in the callsign.
# Vehicle and aircraft stop at the level that says nothing about civilian or
# military use, which a camera cannot tell. The tree has no animal function,
# so animals (and unknown objects) are plain ground tracks as well.
CLASS_FUNCTIONS = MappingProxyType({
    TargetClass.PERSON: "G",
    TargetClass.VEHICLE: "G-E-V",
    TargetClass.ANIMAL: "G",
    TargetClass.AIRCRAFT: "A",
    TargetClass.UNKNOWN: "G",
})  # fmt: skip

EMERGENCY_TYPE = "b-a-o-tbl"  # the CoT alert branch's "911 Alert"
VERIFY_TYPE = "b-m-p-s-m"  # a spot marker: a place for the field teams to look at
HOW_FUSED = "m-f"
UNKNOWN_ERROR = 9_999_999.0  # CoT's value for an unknown hae, ce or le

# The share of a circular 2D Gaussian inside the circle of radius sigma: what
# "circular 1-sigma" holds.
ONE_SIGMA_CIRCLE_PROBABILITY = 1.0 - math.exp(-0.5)  # 0.3935
CE_TABLE_POINTS = 513


def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes.flags.writeable = weights.flags.writeable = False  # constants, shared by all calls
    return nodes, weights


_GL_NODES, _GL_WEIGHTS = _legendre(64)


def cot_time(t: float) -> str:
    """UTC seconds as CoT's ISO 8601 form, to the millisecond."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cot_type(target_class: TargetClass | str,
             affiliation: Affiliation | str = Affiliation.UNKNOWN) -> str:  # fmt: skip
    function = CLASS_FUNCTIONS[TargetClass(target_class)]
    return f"a-{COT_IDENTITY[Affiliation(affiliation)]}-{function}"


def course_speed(ve: float, vn: float) -> tuple[float, float]:
    """Course over ground (`compass_course`) and speed in m/s. A still target has no
    course; 0 is sent then, as TAK expects a number."""
    return compass_course(ve, vn), math.hypot(ve, vn)


def circular_error(position_covariance) -> float:
    """CoT's ce for a 2x2 horizontal covariance (m²): a circular 1-sigma error in metres.

    CoT defines ce as a "circular 1-sigma" error. For a circular Gaussian with
    sigma s per axis that is s, the radius of the circle holding 1 - e^(-1/2)
    (39.35 %) of the probability. An elongated error ellipse has no single
    sigma, so we keep the probability: ce is the radius of the circle about the
    estimate that holds 39.35 % of the Gaussian's mass. It equals s exactly when
    the error is circular, and lies between 0.515 and 1 times the major axis's
    sigma otherwise. (The other common choice, the RMS sigma sqrt(trace/2),
    holds more than 39 % for an elongated ellipse: 52 % for a line.)
    """
    cov = np.asarray(position_covariance, dtype=float)
    if cov.shape != (2, 2) or not np.all(np.isfinite(cov)):
        raise ValueError("the position covariance is not a finite 2x2 matrix")
    minor, major = np.linalg.eigvalsh((cov + cov.T) / 2.0)
    if minor < -1e-9 * max(major, 1.0):
        raise ValueError(f"the position covariance is not positive semi-definite ({minor:.3g})")
    if major <= 0.0:
        return 0.0
    sigma_major, sigma_minor = math.sqrt(major), math.sqrt(max(minor, 0.0))
    ratios, factors = _ce_factors()
    return sigma_major * float(np.interp(sigma_minor / sigma_major, ratios, factors))


@functools.cache
def _ce_factors() -> tuple[np.ndarray, np.ndarray]:
    """ce / sigma_major against sigma_minor / sigma_major, on a grid. The ratio alone
    decides it, so the root is found once per grid point (at first use, about 0.1 s) rather
    than for every track at every period; linear interpolation between points is within
    1e-5 of the root."""
    ratios = np.linspace(0.0, 1.0, CE_TABLE_POINTS)
    return ratios, np.array([ce_factor(ratio) for ratio in ratios])


def ce_factor(ratio: float) -> float:
    """ce / sigma_major of an error ellipse whose sigmas are in `ratio` (minor / major)."""
    target = ONE_SIGMA_CIRCLE_PROBABILITY
    return brentq(lambda r: _circle_probability(r, 1.0, ratio) - target, 0.5, 1.01,
                  xtol=1e-10)  # fmt: skip


def _circle_probability(radius: float, sigma_major: float, sigma_minor: float) -> float:
    """P(x² + y² <= radius²) for x ~ N(0, sigma_major²), y ~ N(0, sigma_minor²).

    With x = radius·sin(t) the inner integral over y is an erf, which leaves a
    smooth integral over t in [-π/2, π/2] that Gauss-Legendre handles well, even
    for a very thin ellipse (the erf's step then falls where cos(t) ~ 0).
    """
    t = _GL_NODES * (math.pi / 2.0)
    half_width = radius * np.cos(t)
    x = radius * np.sin(t) / sigma_major  # in units of sigma_major
    density = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) / sigma_major
    inside_y = erf(half_width / (math.sqrt(2.0) * max(sigma_minor, 1e-150)))
    return float(np.sum(_GL_WEIGHTS * density * inside_y * half_width) * (math.pi / 2.0))


def track_event(track: FusedTrack, now: float, stale_s: float,
                affiliation: Affiliation | str | None = None, altitude_sigma_m: float | None = None,
                uid_prefix: str = "dunewatch") -> ET.Element:  # fmt: skip
    """The CoT event for `track`, sent at `now`; stale `stale_s` after, or at once if ended.

    `affiliation` is an operator's override (None: unknown, the default for
    every detection). `altitude_sigma_m` gives le: the tracks are 2D and their
    altitude is the ground model's, so its error is a property of the terrain
    that the configuration states; None sends CoT's "unknown".
    Raises ValueError for a track that cannot be placed (NaN, out of range, a
    covariance that is not one).
    """
    _check_track(track)
    e, n, ve, vn = track.state
    position_cov = np.array(track.covariance, dtype=float).reshape(4, 4)[:2, :2]
    ce = circular_error(position_cov)
    if altitude_sigma_m is None:
        le = UNKNOWN_ERROR
    elif math.isfinite(altitude_sigma_m) and altitude_sigma_m >= 0:
        le = altitude_sigma_m
    else:
        raise ValueError(f"altitude sigma {altitude_sigma_m!r} is not a distance")
    if track.status == TrackStatus.ENDED:
        stale = max(track.time, now)  # never stale before it starts
    else:
        stale = max(track.time, now) + stale_s
    event = _event(f"{uid_prefix}-track-{track.global_id}",
                   cot_type(track.target_class, affiliation or Affiliation.UNKNOWN), HOW_FUSED,
                   track.time, stale)  # fmt: skip
    _point(event, track.lat, track.lon, track.alt, ce, le)
    detail = ET.SubElement(event, "detail")
    course, speed = course_speed(ve, vn)
    ET.SubElement(detail, "track", course=f"{course:.1f}", speed=f"{speed:.2f}")
    ET.SubElement(detail, "contact", callsign=f"{track.target_class} {track.global_id}")
    return event


def removal(track: FusedTrack, now: float, uid_prefix: str = "dunewatch") -> ET.Element:
    """The event that takes a track off TAK's map: its last state, stale now."""
    return track_event(replace(track, status=TrackStatus.ENDED), now, 0.0, uid_prefix=uid_prefix)


def alert_event(alert: Alert, now: float, stale_s: float,
                uid_prefix: str = "dunewatch") -> ET.Element | None:  # fmt: skip
    """A distress alert as a TAK emergency; None for every other kind.

    Only distress goes to TAK: it asks the field teams to act (find stranded
    people). Border crossings and zone entries already show as the tracks
    themselves, and node, link and battery alerts are HQ's own maintenance;
    sending them too would bury the emergencies under markers nobody in the
    field acts on. A cleared alert (``active`` false) is sent stale now with
    ``cancel="true"``, as TAK clients cancel an emergency. A distress alert
    below critical (people found stationary, to verify) raises no emergency
    in the field: it is a spot marker with its remarks.
    The remarks say what is known (people may be stranded, where, since when)
    and nothing else: no track history, no imagery, no free text from HQ.
    Raises ValueError for a distress alert without a valid position.
    """
    if alert.alert_type != "distress":
        return None
    lat, lon = alert.lat, alert.lon
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"distress alert {alert.alert_id!r} has no position")
    if not math.isfinite(alert.time):
        raise ValueError(f"distress alert {alert.alert_id!r} has no valid time")
    stale = max(alert.time, now) + (stale_s if alert.active else 0.0)
    urgent = alert.severity == "critical"
    event = _event(f"{uid_prefix}-distress-{alert.alert_id}",
                   EMERGENCY_TYPE if urgent else VERIFY_TYPE, HOW_FUSED, alert.time, stale)
    _point(event, lat, lon, UNKNOWN_ERROR, UNKNOWN_ERROR, UNKNOWN_ERROR)
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", callsign=f"SAR {uid_prefix}")
    if not urgent:
        ET.SubElement(detail, "remarks").text = (
            f"Verify: possible stranded people at {_latlon_text(lat, lon)}, found "
            f"stationary in open desert (alert raised {cot_time(alert.time)})."
        )
        return event
    emergency = ET.SubElement(detail, "emergency", type="911 Alert")
    emergency.text = f"SAR {uid_prefix}"
    if not alert.active:
        emergency.set("cancel", "true")
    ET.SubElement(detail, "remarks").text = (
        f"Search and rescue: people may be stranded at {_latlon_text(lat, lon)}. "
        f"A person has stayed still in open desert (alert raised {cot_time(alert.time)})."
    )
    return event


def to_bytes(event: ET.Element) -> bytes:
    """One event on the wire: UTF-8 XML without a declaration, as TAK streams expect."""
    return ET.tostring(event, encoding="unicode").encode()


def _event(uid: str, type_: str, how: str, time: float, stale: float) -> ET.Element:
    return ET.Element("event", version="2.0", uid=uid, type=type_, how=how,
                      time=cot_time(time), start=cot_time(time), stale=cot_time(stale))  # fmt: skip


def _point(event: ET.Element, lat: float, lon: float, hae: float, ce: float, le: float) -> None:
    ET.SubElement(event, "point", lat=f"{lat:.7f}", lon=f"{lon:.7f}", hae=f"{hae:.1f}",
                  ce=f"{ce:.1f}", le=f"{le:.1f}")  # fmt: skip


def _check_track(track: FusedTrack) -> None:
    values = (track.time, track.lat, track.lon, track.alt, *track.state, *track.covariance)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"track {track.global_id} has a NaN or infinite value")
    if not (-90.0 <= track.lat <= 90.0 and -180.0 <= track.lon <= 180.0):
        raise ValueError(f"track {track.global_id} is off the globe ({track.lat}, {track.lon})")


def _latlon_text(lat: float, lon: float) -> str:
    return f"{abs(lat):.5f}{'N' if lat >= 0 else 'S'} {abs(lon):.5f}{'E' if lon >= 0 else 'W'}"
