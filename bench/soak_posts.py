"""The simulated border posts of the soak: ground truth on patches of desert and
posts publishing it as edge nodes do (see bench/soak.py)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hq.broker import username
from wire import topics
from wire.geo import EnuFrame
from wire.messages import DroneLink, NodeStatus, Track, TrackBatch, VehicleTelemetry, encode

SITE = "soak"
ORIGIN = (22.84, 14.13, 620.0)  # HQ's frame: the first post, where configs/hq.toml puts it
GROUND_ALT = ORIGIN[2]  # flat desert, as the edge reports it
CAMERA_FPS = 10.0  # the trackers' scan rate, for the covariances and the hit counts
QOS = 1


# --- the ground truth -----------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Posts `spacing_m` apart along the east axis of HQ's frame. Each drone watches one
    round patch north of its post; with two drones or more, a post's first and last patches
    are its neighbours' last and first, so those targets are seen by two posts."""

    posts: int
    drones: int
    tracks_per_drone: int
    spacing_m: float = 4000.0
    patch_radius_m: float = 450.0

    def patch(self, post: int, drone: int) -> int:
        return post * (self.drones - 1) + drone if self.drones > 1 else post

    @property
    def patches(self) -> int:
        return self.patch(self.posts - 1, self.drones - 1) + 1

    def patch_centre(self, patch: int) -> np.ndarray:
        if self.drones > 1:
            east = -self.spacing_m / 2 + patch * self.spacing_m / (self.drones - 1)
        else:
            east = patch * self.spacing_m
        return np.array([east, 700.0 + 350.0 * (patch % 3)])  # staggered north of the posts

    def post_east(self, post: int) -> float:
        return post * self.spacing_m


class Ground:
    """Walkers and vehicles, `tracks_per_drone` per patch, in HQ's ENU frame. Straight
    movers keep their heading, wandering ones drift at random; anyone leaving the patch
    turns back into it, so the picture stays the same size for the whole soak. Heading
    changes are lateral accelerations a real walker or driver could make, of the size the
    trackers' process noise allows: an instant U-turn would break any tracker's gate."""

    WANDER_ACCEL = 0.2  # m/s^2 per root second: the trackers' process noise, sqrt(0.05)
    TURN_ACCEL = 0.5  # m/s^2 while turning back into the patch

    def __init__(self, layout: Layout, rng: np.random.Generator, t0: float):
        n = layout.patches * layout.tracks_per_drone
        self.rng, self.t, self.radius = rng, t0, layout.patch_radius_m
        self.patch = np.arange(n) // layout.tracks_per_drone
        self.centre = np.array([layout.patch_centre(p) for p in self.patch]).reshape(n, 2)
        spot = rng.uniform(0, 2 * np.pi, n)
        reach = 0.8 * self.radius * np.sqrt(rng.uniform(0, 1, n))
        self.pos = self.centre + np.stack([reach * np.cos(spot), reach * np.sin(spot)], 1)
        self.vehicle = rng.random(n) < 0.3
        self.speed = np.where(self.vehicle, rng.uniform(4.0, 9.0, n), rng.uniform(0.8, 1.8, n))
        self.wander = rng.random(n) < 0.5
        self.heading = rng.uniform(0, 2 * np.pi, n)  # from north, clockwise
        self.goal = np.full(n, np.nan)  # the heading being turned to, while turning back

    @property
    def velocity(self) -> np.ndarray:
        return self.speed[:, None] * np.stack([np.sin(self.heading), np.cos(self.heading)], 1)

    def advance(self, t: float) -> None:
        dt = t - self.t
        if dt <= 0:
            return
        self.t = t
        drift = self.rng.normal(0, self.WANDER_ACCEL * math.sqrt(dt), len(self.pos))
        self.heading += self.wander * drift / self.speed
        out = self.pos - self.centre
        leaving = ((out ** 2).sum(1) > self.radius ** 2) & ((out * self.velocity).sum(1) > 0)
        leaving &= np.isnan(self.goal)
        back = np.arctan2(-out[leaving, 0], -out[leaving, 1])
        self.goal[leaving] = back + self.rng.uniform(-0.6, 0.6, leaving.sum())
        turning = np.flatnonzero(~np.isnan(self.goal))
        left = (self.goal[turning] - self.heading[turning] + np.pi) % (2 * np.pi) - np.pi
        step = self.TURN_ACCEL / self.speed[turning] * dt
        self.heading[turning] += np.clip(left, -step, step)
        self.goal[turning[np.abs(left) <= step]] = np.nan  # turned
        self.pos += self.velocity * dt


def steady_state_covariance(q: float, dt: float, along_m: float, across_m: float) -> np.ndarray:
    """The constant-velocity Kalman filter's covariance after many scans, [e, n, ve, vn],
    for a camera looking east: ground range is uncertain along the line of sight (a small
    tilt error moves the ground point far), little across it. Rotated per track later."""
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    Q = q * np.kron(np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]]), np.eye(2))
    H = np.eye(2, 4)
    R = np.diag([along_m ** 2, across_m ** 2])
    P = np.diag([100.0, 100.0, 25.0, 25.0])
    for _ in range(2000):
        P = F @ P @ F.T + Q
        K = P @ H.T @ np.linalg.inv(H @ P @ H.T + R)
        P = (np.eye(4) - K @ H) @ P
    return (P + P.T) / 2


# Errors of a tracker's estimate drift slowly rather than jump each batch: AR(1) in the
# whitened space keeps each batch's error distributed as N(0, P) yet correlated over ~5 s.
ERROR_TIME_S = 5.0
CANONICAL_P = steady_state_covariance(q=0.05, dt=1 / CAMERA_FPS, along_m=6.0, across_m=2.0)
CANONICAL_L = np.linalg.cholesky(CANONICAL_P)


# --- the posts ------------------------------------------------------------------------------

@dataclass
class PostCounters:
    published: int = 0
    acknowledged: int = 0
    refused: int = 0  # PUBACK with a failure reason code
    connects: int = 0


class Post:
    """One border post: its MQTT client and what its tracker and drones would report."""

    def __init__(self, index: int, layout: Layout, ground: Ground, period_s: float,
                 password: str, port: int, rng: np.random.Generator):  # fmt: skip
        self.index, self.ground, self.period_s, self.rng = index, ground, period_s, rng
        self.name = f"post-{index + 1:02d}"
        self.key = f"{SITE}/{self.name}"
        self.hq_frame = EnuFrame(*ORIGIN)
        lat, lon, _ = self.hq_frame.to_geodetic(layout.post_east(index), 0.0, 0.0)
        self.frame = EnuFrame(float(lat), float(lon), GROUND_ALT)
        home = np.array([layout.post_east(index), 0.0])
        patches = [layout.patch(index, d) for d in range(layout.drones)]
        # Each drone loiters 350 m from its patch on the side of its post: a shared patch
        # is seen from two directions, so the two posts' error ellipses cross.
        centres = [layout.patch_centre(p) for p in patches]
        self.loiter = np.array([c + 350.0 * (home - c) / np.linalg.norm(home - c) for c in centres])
        self.sysids = list(range(1, layout.drones + 1))
        self.targets = np.concatenate([np.flatnonzero(ground.patch == p) for p in patches])
        self.drone_of = np.repeat(np.arange(layout.drones), layout.tracks_per_drone)
        self.track_ids = (self.drone_of + 1) * 1000 + np.tile(np.arange(layout.tracks_per_drone),
                                                              layout.drones)  # fmt: skip
        self.error = rng.normal(0, 1, (len(self.targets), 4))
        self.started = time.time()
        self.seq = 0
        self.sent: dict[int, float] = {}  # seq -> UTC s of publish
        self.counters = PostCounters()
        self.connected = threading.Event()
        self._stopped = False
        self.client = self._client(password)
        self.client.connect("127.0.0.1", port, keepalive=15)
        self.client.loop_start()

    def _client(self, password: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{SITE}.{self.name}",
                             protocol=mqtt.MQTTv5)  # fmt: skip
        client.username_pw_set(username(SITE, self.name), password)
        client.will_set(topics.status(SITE, self.name), encode(self.status("offline")), qos=QOS,
                        retain=True)  # fmt: skip
        client.max_inflight_messages_set(20)  # the edge uplink's window
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.counters.connects += 1
            self.publish_status("birth")
            self.connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.counters.acknowledged += 1
        self.counters.refused += reason_code.is_failure

    def _publish(self, topic: str, payload: bytes, retain: bool = False, properties=None):
        info = self.client.publish(topic, payload, qos=QOS, retain=retain, properties=properties)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.counters.published += 1
        return info

    def drones_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Each drone's position and velocity (HQ ENU), circling 100 m around its loiter
        point once every two minutes, the drones out of step."""
        omega = 2 * np.pi / 120.0
        angle = omega * t + np.arange(len(self.loiter)) * 1.3
        ring = np.stack([np.cos(angle), np.sin(angle)], 1)
        return self.loiter + 100.0 * ring, 100.0 * omega * np.stack([-ring[:, 1], ring[:, 0]], 1)

    def publish_tick(self, now: float, sent: dict[tuple[str, float], float]) -> None:
        """One tracker cycle: the batch, then the drones' telemetry, as the edge node does."""
        state_time = now - 0.5 / CAMERA_FPS  # the last scan, half a frame before publishing
        self.ground.advance(state_time)
        batch = self.batch(state_time)
        payload = encode(batch)
        published = time.time()
        if self._publish(topics.tracks(SITE, self.name), payload).rc == mqtt.MQTT_ERR_SUCCESS:
            self.sent[batch.seq] = published
            sent[(self.key, state_time)] = published
        self.seq += 1
        for message in self.telemetry(now):
            self._publish(topics.telemetry(SITE, self.name), encode(message))

    def batch(self, state_time: float) -> TrackBatch:
        truth_pos = self.ground.pos[self.targets]
        truth_vel = self.ground.velocity[self.targets]
        drone_pos, _ = self.drones_at(state_time)
        sight = truth_pos - drone_pos[self.drone_of]
        bearing = np.arctan2(sight[:, 1], sight[:, 0])  # from east, anticlockwise
        c, s = np.cos(bearing), np.sin(bearing)
        rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)  # (n, 2, 2)
        keep = math.exp(-self.period_s / ERROR_TIME_S)
        self.error = keep * self.error + math.sqrt(1 - keep ** 2) * self.rng.normal(
            0, 1, self.error.shape)  # fmt: skip
        canonical = self.error @ CANONICAL_L.T
        pos = truth_pos + np.einsum("nij,nj->ni", rot, canonical[:, :2])
        vel = truth_vel + np.einsum("nij,nj->ni", rot, canonical[:, 2:])
        pos_cov = rot @ CANONICAL_P[:2, :2] @ rot.transpose(0, 2, 1)
        vel_cov = rot @ CANONICAL_P[2:, 2:] @ rot.transpose(0, 2, 1)
        # Into the post's own frame through WGS84, as its tracker works there. The frames
        # differ by a tenth of a degree of rotation over 40 km: covariances carry over as is.
        lat, lon, _ = self.hq_frame.to_geodetic(pos[:, 0], pos[:, 1], np.zeros(len(pos)))
        ground = np.full(len(pos), GROUND_ALT)
        e, n, _ = self.frame.from_geodetic(lat, lon, ground)
        lat1, lon1, _ = self.hq_frame.to_geodetic(pos[:, 0] + vel[:, 0], pos[:, 1] + vel[:, 1],
                                                  np.zeros(len(pos)))  # fmt: skip
        e1, n1, _ = self.frame.from_geodetic(lat1, lon1, ground)
        hits = int((state_time - self.started) * CAMERA_FPS) + 30
        classes = np.where(self.ground.vehicle[self.targets], "vehicle", "person")
        tracks = [
            Track(track_id=int(self.track_ids[k]), time=state_time, lat=float(lat[k]),
                  lon=float(lon[k]), alt=GROUND_ALT, position_enu=(float(e[k]), float(n[k])),
                  velocity_enu=(float(e1[k] - e[k]), float(n1[k] - n[k])),
                  position_covariance=pos_cov[k].tolist(), velocity_covariance=vel_cov[k].tolist(),
                  target_class=str(classes[k]), status="confirmed",
                  quality=0.97, hits=hits, sensors=[f"drone-{self.drone_of[k] + 1}-thermal"])
            for k in range(len(self.targets))
        ]  # fmt: skip
        return TrackBatch(site=SITE, node=self.name, seq=self.seq, sent=time.time(),
                          frame_origin=(self.frame.lat, self.frame.lon, self.frame.alt),
                          tracks=tracks)  # fmt: skip

    def telemetry(self, now: float) -> list[VehicleTelemetry]:
        pos, vel = self.drones_at(now)
        lat, lon, _ = self.hq_frame.to_geodetic(pos[:, 0], pos[:, 1], np.zeros(len(pos)))
        return [VehicleTelemetry(site=SITE, node=self.name, sysid=sysid, time=now,
                                 lat=float(lat[k]), lon=float(lon[k]), alt=GROUND_ALT + 120.0,
                                 velocity_enu=(float(vel[k, 0]), float(vel[k, 1]), 0.0),
                                 heading_deg=math.degrees(math.atan2(vel[k, 0], vel[k, 1])) % 360)
                for k, sysid in enumerate(self.sysids)]  # fmt: skip

    def status(self, state: str, now: float | None = None) -> NodeStatus:
        now = time.time() if now is None else now
        battery = max(0.3, 0.95 - (now - self.started) / 3600.0)  # well above the alert level
        drones = [DroneLink(sysid=s, connected=True, last_heartbeat=now - 0.3, packet_loss=0.01,
                            rssi=180, battery_remaining=battery) for s in self.sysids]
        return NodeStatus(site=SITE, node=self.name, state=state, time=now,
                          software_version="soak", capabilities=["tracks", "telemetry"],
                          drones=drones if state != "offline" else [], outbox_depth=0,
                          lat=self.frame.lat, lon=self.frame.lon)  # fmt: skip

    def publish_status(self, state: str = "online") -> mqtt.MQTTMessageInfo:
        expiry = Properties(PacketTypes.PUBLISH)
        expiry.MessageExpiryInterval = 600  # retained and expiring, as the edge uplink sends it
        return self._publish(topics.status(SITE, self.name), encode(self.status(state)),
                             retain=True, properties=expiry)  # fmt: skip

    def stop(self) -> None:
        """Say offline, as an edge node's clean stop does, and disconnect (once)."""
        if self._stopped:
            return
        self._stopped = True
        if self.client.is_connected():
            self.publish_status("offline").wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


