"""The part of an autopilot a ground station talks to during a replay.

Ground stations ask a vehicle for its version and home position when they
connect (MAV_CMD_REQUEST_MESSAGE, MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES) and
wait for the answer; a replay that stayed silent would look broken. The
responder answers those with COMMAND_ACK and the message, as the vehicle of
the log (its system and component id), and refuses other commands politely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymavlink.dialects.v20 import ardupilotmega as dialect

from sim_hw.tlog import Frame

REQUEST_MESSAGE = dialect.MAV_CMD_REQUEST_MESSAGE
REQUEST_CAPABILITIES = dialect.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES


@dataclass
class ResponderCounters:
    commands: int = 0
    answered: int = 0
    refused: int = 0
    undecodable: int = 0


@dataclass
class AutopilotResponder:
    sysid: int
    compid: int
    home: tuple[int, int, int] = (0, 0, 0)  # lat e7, lon e7, alt mm
    counters: ResponderCounters = field(default_factory=ResponderCounters)

    def __post_init__(self):
        self._link = dialect.MAVLink(None, srcSystem=self.sysid, srcComponent=self.compid)

    @classmethod
    def for_frames(cls, frames: list[Frame]) -> AutopilotResponder:
        """Play the system of the log's first heartbeat, at home where it first was."""
        heartbeats = (f for f in frames if f.msgid == dialect.MAVLINK_MSG_ID_HEARTBEAT)
        heartbeat = next(heartbeats, frames[0])
        responder = cls(heartbeat.sysid, heartbeat.compid)
        parser = dialect.MAVLink(None)
        for frame in frames:
            if frame.msgid in (dialect.MAVLINK_MSG_ID_HOME_POSITION,
                               dialect.MAVLINK_MSG_ID_GLOBAL_POSITION_INT):  # fmt: skip
                msg = parser.decode(bytearray(frame.raw))
                lat = getattr(msg, "latitude", getattr(msg, "lat", 0))
                lon = getattr(msg, "longitude", getattr(msg, "lon", 0))
                responder.home = (lat, lon, msg.altitude if hasattr(msg, "altitude") else msg.alt)
                break
        return responder

    def answer(self, message) -> list[bytes]:
        """Frames to send back for one received message (none for most)."""
        if message.get_type() != "COMMAND_LONG" or message.target_system not in (0, self.sysid):
            return []
        self.counters.commands += 1
        reply = self._reply(message)
        if reply is None:
            self.counters.refused += 1
            return [self._ack(message.command, dialect.MAV_RESULT_UNSUPPORTED)]
        self.counters.answered += 1
        return [self._ack(message.command, dialect.MAV_RESULT_ACCEPTED), reply]

    def _reply(self, command) -> bytes | None:
        if command.command == REQUEST_CAPABILITIES:
            return self._autopilot_version()
        if command.command == REQUEST_MESSAGE:
            wanted = int(command.param1)
            if wanted == dialect.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
                return self._autopilot_version()
            if wanted == dialect.MAVLINK_MSG_ID_HOME_POSITION:
                return self._home_position()
        return None

    def _ack(self, command: int, result: int) -> bytes:
        return dialect.MAVLink_command_ack_message(command, result).pack(self._link)

    def _autopilot_version(self) -> bytes:
        capabilities = (
            dialect.MAV_PROTOCOL_CAPABILITY_MAVLINK2
            | dialect.MAV_PROTOCOL_CAPABILITY_MISSION_INT
            | dialect.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
        )
        return dialect.MAVLink_autopilot_version_message(
            capabilities, 0x04050000, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0, self.sysid
        ).pack(self._link)

    def _home_position(self) -> bytes:
        lat, lon, alt = self.home
        return dialect.MAVLink_home_position_message(
            lat, lon, alt, 0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0
        ).pack(self._link)
