"""MAVLink telemetry source: one link, every vehicle on it.

`MavlinkReceiver` is the parsing core: bytes in (from a socket, a serial
port or a .tlog), vehicles out, each keyed by system id with its time series,
time sync and link health. It keeps no clock of its own: every call says
when its bytes arrived, so a tlog replays with its recorded times and tests
choose theirs. `MavlinkDriver` is the thin loop around it: a thread that
opens the pymavlink connection string, feeds what arrives, and reconnects
with back-off when the connection fails or falls silent.

Ground stations on the link (system id 255, or any system whose HEARTBEAT
says MAV_TYPE_GCS) are not vehicles: their frames are counted and ignored.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as dialect

from edge.drivers.framing import FrameDecoder, tlog_entries
from edge.drivers.link_health import MavlinkCounters, RadioStatus
from edge.drivers.vehicle_state import Pose, VehicleConfig, VehicleState, VehicleStatus

log = logging.getLogger(__name__)

GCS_SYSID = 255
RADIO_MESSAGES = ("RADIO_STATUS", "RADIO")
DATAGRAM_SCHEMES = ("udpin:", "udpout:", "udp:", "udpbcast:", "mcast:")
POLL_S = 0.1  # how often the loop looks at the stop event and the heartbeat clocks
RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: bursts of many drones must not overflow the socket


@dataclass(frozen=True)
class MavlinkConfig:
    url: str  # pymavlink connection string: udpin:0.0.0.0:14550, tcp:host:5760, /dev/ttyUSB0,57600
    signing_key: bytes | None = None  # 32 bytes: accept signed MAVLink 2 frames only
    unsigned_allowed: tuple[str, ...] = ()  # message names let through unsigned anyway
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    reconnect_min: float = 0.5  # s, first back-off
    reconnect_max: float = 10.0  # s, longest back-off
    idle_reconnect: float = 10.0  # s without a byte before a TCP client reconnects
    heartbeat_period: float = 1.0  # s between our own HEARTBEATs (0: send none)
    own_sysid: int = 254  # of our HEARTBEAT, which udpout and TCP peers wait for
    own_compid: int = dialect.MAV_COMP_ID_MISSIONPLANNER


@dataclass(frozen=True)
class DriverStatus:
    url: str
    connected: bool
    counters: MavlinkCounters
    vehicles: list[VehicleStatus]
    radio: RadioStatus | None  # a radio modem's own report (SiK), where there is one


Listener = Callable[[object, float], None]


class MavlinkReceiver:
    """The parsing core: feed it bytes with their arrival time (UTC seconds)."""

    def __init__(self, config: MavlinkConfig):
        self.config = config
        self.counters = MavlinkCounters()
        self.decoder = FrameDecoder(self.counters, config.signing_key, config.unsigned_allowed)
        self.vehicles: dict[int, VehicleState] = {}
        self.ground_stations: set[int] = {GCS_SYSID}
        self.listeners: list[Listener] = []  # called with (message, arrival) of each message
        self.radio: RadioStatus | None = None  # of a radio modem that is not a vehicle (SiK)
        self.lock = threading.RLock()  # the loop feeds while the node reads poses

    def feed_datagram(self, data: bytes, arrival: float) -> int:
        """One UDP datagram or tlog entry; returns how many messages were handed on."""
        with self.lock:
            return self._route_all(self.decoder.datagram(data), arrival)

    def feed_stream(self, data: bytes, arrival: float) -> int:
        """Bytes of a TCP or serial stream; a frame may span calls."""
        with self.lock:
            return self._route_all(self.decoder.stream(data), arrival)

    def read_tlog(self, path: str | Path) -> int:
        """Every entry of a .tlog, each at its recorded time; returns messages handed on."""
        handed_on = 0
        for stamp, frame in tlog_entries(Path(path).read_bytes()):
            handed_on += self.feed_datagram(frame, stamp)
        return handed_on

    def tick(self, now: float) -> None:
        """Let the heartbeat clocks run while no frame arrives."""
        with self.lock:
            for vehicle in self.vehicles.values():
                vehicle.link.check(now)

    def pose_at(self, sysid: int, t: float) -> Pose:
        """Pose of vehicle `sysid` at UTC t; KeyError or PoseUnavailable otherwise."""
        with self.lock:
            return self.vehicles[sysid].pose_at(t)

    def vehicle_status(self, now: float) -> list[VehicleStatus]:
        with self.lock:
            return [v.status(now) for v in self.vehicles.values()]

    def counters_snapshot(self) -> MavlinkCounters:
        with self.lock:
            return replace(self.counters)

    def _route_all(self, messages: list, arrival: float) -> int:
        return sum(self._route(message, arrival) for message in messages)

    def _route(self, msg, arrival: float) -> bool:
        sysid = msg.get_srcSystem()
        if self._from_ground_station(msg, sysid):
            self.counters.ground_station += 1
            return False
        msg_type = msg.get_type()
        vehicle = self.vehicles.get(sysid)
        if vehicle is None and msg_type in RADIO_MESSAGES:
            # A radio modem speaking for itself (SiK: system 51), not for a vehicle.
            self.radio = RadioStatus.from_message(msg, arrival)
            self.counters.messages += 1
            self._notify(msg, arrival)
            return True
        if vehicle is None:
            vehicle = self._add_vehicle(sysid)
        if not vehicle.link.accept(msg.get_srcComponent(), msg.get_seq(), msg_type, arrival):
            return False  # a duplicate
        self.counters.messages += 1
        self._notify(msg, arrival)
        vehicle.handle(msg, arrival)
        return True

    def _from_ground_station(self, msg, sysid: int) -> bool:
        if sysid in self.ground_stations:
            return True
        if msg.get_type() == "HEARTBEAT" and msg.type == dialect.MAV_TYPE_GCS:
            self.ground_stations.add(sysid)
            if self.vehicles.pop(sysid, None) is not None:
                log.info("system is a ground station, not a vehicle sysid=%d", sysid)
            return True
        return False

    def _add_vehicle(self, sysid: int) -> VehicleState:
        log.info("new vehicle sysid=%d url=%s", sysid, self.config.url)
        vehicle = VehicleState(sysid, self.config.vehicle, self.counters)
        self.vehicles[sysid] = vehicle
        return vehicle

    def _notify(self, msg, arrival: float) -> None:
        for listener in self.listeners:
            try:
                listener(msg, arrival)
            except Exception:  # a listener's bug must not stop the link
                log.exception("listener failed message=%s", msg.get_type())


class MavlinkDriver:
    """A thread that keeps the connection open and feeds a MavlinkReceiver."""

    def __init__(self, config: MavlinkConfig, receiver: MavlinkReceiver | None = None):
        self.config = config
        self.receiver = receiver or MavlinkReceiver(config)
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._datagrams = config.url.startswith(DATAGRAM_SCHEMES)
        # A TCP connection whose peer vanished (power cut, radio out of range)
        # may never say it closed; only silence tells.
        self._idle_limit = config.idle_reconnect if config.url.startswith("tcp:") else None

    def start(self) -> MavlinkDriver:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"mavlink {self.config.url}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> MavlinkDriver:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def pose_at(self, sysid: int, t: float) -> Pose:
        return self.receiver.pose_at(sysid, t)

    def status(self) -> DriverStatus:
        receiver = self.receiver
        return DriverStatus(self.config.url, self.connected, receiver.counters_snapshot(),
                            receiver.vehicle_status(time.time()), receiver.radio)  # fmt: skip

    def _run(self) -> None:
        backoff = self.config.reconnect_min
        while not self._stop.is_set():
            connection = self._open()
            if connection is not None:
                if self._serve(connection):
                    backoff = self.config.reconnect_min  # it worked for a while: retry soon
            if self._stop.wait(backoff):
                break
            backoff = min(2 * backoff, self.config.reconnect_max)

    def _open(self):
        counters = self.receiver.counters
        device, options = _device_and_options(self.config.url)
        try:
            # One attempt per call: the back-off between attempts is ours.
            connection = mavutil.mavlink_connection(device, retries=0, **options)
        except Exception as error:  # a refused socket, a missing serial device, a bad string
            counters.connect_failures += 1
            log.warning("connect failed url=%s error=%s", self.config.url, error)
            return None
        port = getattr(connection, "port", None)
        if self._datagrams and port is not None:
            port.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        counters.connects += 1
        self.connected = True
        log.info("connected url=%s", self.config.url)
        return connection

    def _serve(self, connection) -> bool:
        """Feed the receiver until stopped or the connection fails; True if data came."""
        received = False
        last_data = last_heartbeat = time.monotonic()
        try:
            while not self._stop.is_set():
                if connection.select(POLL_S):
                    if self._drain(connection):
                        received, last_data = True, time.monotonic()
                now = time.monotonic()
                if self._heartbeat_due(now, last_heartbeat):
                    connection.write(self._heartbeat)
                    last_heartbeat = now
                self.receiver.tick(time.time())
                if self._idle_limit is not None and now - last_data > self._idle_limit:
                    raise ConnectionError(f"nothing received for {self._idle_limit} s")
        except Exception as error:
            self.receiver.counters.disconnects += 1
            log.warning("connection lost url=%s error=%s", self.config.url, error)
        finally:
            self.connected = False
            _close_quietly(connection)
        return received

    def _drain(self, connection) -> bool:
        """Read what is waiting; False when nothing was. A stream that reads empty is closed."""
        got = False
        while True:
            fd_before = connection.fd
            data = connection.recv(65535)
            if not data:
                if not self._datagrams and not got and connection.fd == fd_before:
                    raise ConnectionError("closed by the peer")
                return got
            got = True
            arrival = time.time()
            if self._datagrams:
                self.receiver.feed_datagram(bytes(data), arrival)
            else:
                self.receiver.feed_stream(bytes(data), arrival)
                return got  # a stream said readable once; the next select says again

    def _heartbeat_due(self, now: float, last: float) -> bool:
        period = self.config.heartbeat_period
        return period > 0 and now - last >= period

    @property
    def _heartbeat(self) -> bytes:
        cfg = self.config
        return self.receiver.decoder.heartbeat_frame(cfg.own_sysid, cfg.own_compid)


def _device_and_options(url: str) -> tuple[str, dict]:
    """A serial port may be written "/dev/ttyUSB0,57600", as ground stations do."""
    device, _, baud = url.partition(",")
    if baud.isdigit() and not url.startswith(DATAGRAM_SCHEMES + ("tcp:", "tcpin:")):
        return device, {"baud": int(baud)}
    return url, {}


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception as error:  # already broken: nothing more to release
        log.debug("close failed error=%s", error)
