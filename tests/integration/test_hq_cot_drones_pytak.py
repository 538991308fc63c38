"""Our drones on the CoT stream, read by pytak's receive worker on a loopback listener from
a TakStreamer over a real SQLite store: each drone a friendly UAV named by its post and
system id, each camera footprint a closed shape whose points are the footprint's corners."""

import asyncio
import time

import pytest

from hq.store.records import IngestBatch
from hq.store.sqlite import SqliteStore
from hq.tak import StoreSource, TakConfig, TakStreamer
from tests.integration.test_hq_cot_pytak import PytakListener, seconds, uids
from wire.messages import CameraFootprint, VehicleTelemetry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
PERIOD = 0.2
CORNERS = [(14.140, 22.860), (14.150, 22.860), (14.148, 22.852), (14.142, 22.852)]


def telemetry(t, node, lat):
    return VehicleTelemetry(
        site="tummo", node=node, sysid=1, time=t, lat=lat, lon=14.145, alt=950.0,
        velocity_enu=(0.0, 12.0, 0.0), heading_deg=0.0, battery_remaining=0.5,
        link_connected=True,
        footprints=[CameraFootprint(camera="thermal", corners=CORNERS)],
    )  # fmt: skip


def test_pytak_reads_our_drones_and_their_footprints(tmp_path):
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path):
    listener = PytakListener()
    port = await listener.start()
    store = SqliteStore(tmp_path / "hq.db")
    t0 = time.time()
    store.commit_ingest_many(
        [
            IngestBatch(t0, telemetry=[telemetry(t0, "west-1", 22.85)]),
            IngestBatch(t0, telemetry=[telemetry(t0, "east-1", 22.75)]),
        ]
    )
    streamer = TakStreamer(TakConfig(host="127.0.0.1", port=port, period_s=PERIOD),
                           StoreSource(store)).start()  # fmt: skip
    west, east = "dunewatch-drone-tummo-west-1-1", "dunewatch-drone-tummo-east-1-1"
    shapes = {f"{west}-footprint-thermal", f"{east}-footprint-thermal"}
    try:
        got = await listener.wait_for(0, lambda got: {west, east} | shapes <= uids(got))
    finally:
        await asyncio.to_thread(streamer.stop)
    await listener.close()
    store.close()
    assert uids(got) == {west, east} | shapes
    callsigns = {}
    for _, event in got:
        assert seconds(event.get("time")) == pytest.approx(t0, abs=1e-3)
        if event.get("uid") in (west, east):
            assert event.get("type") == "a-f-A-M-F-Q"
            callsigns[event.get("uid")] = event.find("detail/contact").get("callsign")
            assert float(event.find("detail/track").get("speed")) == pytest.approx(12.0)
            assert float(event.find("detail/track").get("course")) == pytest.approx(0.0)
        else:
            assert event.get("type") == "u-d-f"
            points = [tuple(map(float, link.get("point").split(",")))
                      for link in event.iter("link")]  # fmt: skip
            assert points == [(lat, lon) for lon, lat in (*CORNERS, CORNERS[0])]
    assert callsigns == {west: "tummo/west-1 drone 1", east: "tummo/east-1 drone 1"}
    assert streamer.counters.skipped == 0
