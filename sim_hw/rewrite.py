"""Change fields of a recorded frame and encode it again under its original header.

Faults (a GPS that loses its fix, a clock that jumps) and re-stamping a replay
to the present both alter what a frame says; the receiver must still see the
same sender, component, sequence number and MAVLink version, or it would
count loss and duplicates that did not happen.
"""

from __future__ import annotations

import dataclasses

from pymavlink.dialects.v20 import ardupilotmega as dialect

from sim_hw.tlog import Frame


def decode(frame: Frame):
    """The frame's pymavlink message, or None when it does not decode."""
    parser = dialect.MAVLink(None)
    parser.robust_parsing = True
    try:
        message = parser.parse_char(frame.raw)
    except dialect.MAVError:
        return None
    return None if message is None or message.get_type() == "BAD_DATA" else message


def with_fields(frame: Frame, **fields) -> Frame:
    """A copy of `frame` whose message has `fields` changed; unsigned after the change."""
    message = decode(frame)
    if message is None:
        raise ValueError(f"frame of message id {frame.msgid} does not decode")
    for name, value in fields.items():
        if name not in message.get_fieldnames():
            raise ValueError(f"{message.get_type()} has no field {name!r}")
        setattr(message, name, value)
    encoder = dialect.MAVLink(None, srcSystem=frame.sysid, srcComponent=frame.compid)
    encoder.seq = frame.raw[4] if frame.version == 2 else frame.raw[2]
    raw = message.pack(encoder, force_mavlink1=frame.version == 1)
    return dataclasses.replace(frame, raw=raw)
