"""Prometheus metrics of the edge node, read from its parts' own counters at scrape time.

The loop, the uplink and its outbox, the tracker, the MAVLink drivers and the
camera drivers each keep their counters; `EdgeCollector` only reads them, so
nothing is counted twice and a scrape shows the values of that moment. Every
sample carries the node's `site` and `node` labels, so one Prometheus can
scrape many posts. The registry is the node's own (`edge_registry`), never
prometheus_client's global one: two nodes in one process (tests) do not mix.

`python -m edge run` serves it when the config's `[metrics] port` is set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.node import EdgeNode

Samples = Iterable[tuple[Sequence[str], float]]  # (extra label values, value)

# MavlinkCounters field -> metric name and what it counts. `lost` is left out: a late
# frame takes back a loss already booked, so it is no counter (it can go down); the
# per-drone loss ratio carries it.
MAVLINK_COUNTERS = [
    ("bytes_in", "received_bytes", "bytes received on the link"),
    ("frames", "frames",
     "frames that passed framing, checksum and (with signing on) the signature check"),
    ("messages", "messages",
     "frames handed on to the vehicles: less duplicates and ground-station traffic"),
    ("skipped_bytes", "skipped_bytes", "bytes outside any frame: noise, rejected frames"),
    ("duplicates", "duplicate_frames", "frames dropped as a repeat of the sender's last one"),
    ("out_of_order", "out_of_order_frames", "frames that came after a later one of their sender"),
    ("ground_station", "ground_station_frames", "frames of ground stations, ignored"),
    ("invalid_values", "invalid_values",
     "messages skipped for unusable values (NaN attitude, position 0,0, zero quaternion)"),
    ("gps_no_fix", "gps_no_fix", "GPS reports without a 3D fix"),
    ("time_jumps", "time_jumps", "vehicle clock offsets that jumped (the history was dropped)"),
    ("reboots", "vehicle_reboots", "vehicle reboots seen on the link"),
    ("connects", "connects", "connections opened"),
    ("connect_failures", "connect_failures", "connection attempts that failed"),
    ("disconnects", "disconnects", "connections that failed after opening"),
]  # fmt: skip
# MavlinkCounters field -> the `reason` of a rejected frame.
MAVLINK_REJECTIONS = [
    ("truncated", "truncated"),
    ("bad_crc", "bad_crc"),
    ("unknown_message", "unknown_message"),
    ("malformed", "malformed"),
    ("unsigned_rejected", "unsigned"),
    ("bad_signature", "bad_signature"),
    ("stale_signature", "stale_signature"),
]
# CameraCounters field -> metric name and what it counts.
CAMERA_COUNTERS = [
    ("frames_accepted", "frames", "frames accepted from the camera (decoded and usable)"),
    ("dropped", "dropped_frames",
     "accepted frames replaced by a newer one before the node took them"),
    ("reconnects", "reconnects", "connections to the camera after the first"),
    ("connect_failures", "connect_failures", "connection attempts to the camera that failed"),
    ("disconnects", "disconnects", "camera sources that failed or stalled after opening"),
]  # fmt: skip


class _Families:
    """Metric families whose samples all carry the node's site and node labels."""

    def __init__(self, site: str, node: str):
        self._base = [site, node]

    def counter(self, name: str, text: str, value: float) -> Metric:
        return self.counters(name, text, [], [((), value)])

    def gauge(self, name: str, text: str, value: float) -> Metric:
        return self.gauges(name, text, [], [((), value)])

    def counters(self, name: str, text: str, labels: list[str], samples: Samples) -> Metric:
        return self._family(CounterMetricFamily, name, text, labels, samples)

    def gauges(self, name: str, text: str, labels: list[str], samples: Samples) -> Metric:
        return self._family(GaugeMetricFamily, name, text, labels, samples)

    def _family(self, kind, name, text, labels, samples) -> Metric:
        family = kind(name, text, labels=["site", "node", *labels])
        for values, value in samples:
            family.add_metric([*self._base, *values], float(value))
        return family


class EdgeCollector(Collector):
    """Reads an `EdgeNode`'s parts whenever the registry is collected (on a scrape)."""

    def __init__(self, node: EdgeNode):
        self.node = node

    def collect(self) -> Iterator[Metric]:
        families = _Families(self.node.settings.site, self.node.settings.node)
        yield from self._loop(families)
        yield from self._uplink(families)
        yield from self._tracker(families)
        yield from self._drones(families, self.node.clock())
        yield from self._mavlink_links(families)
        yield from self._cameras(families)

    def _loop(self, f: _Families) -> Iterator[Metric]:
        c = self.node.counters
        yield f.counter("dunewatch_edge_frames_total", "camera frames the node's loop took",
                        c.frames)  # fmt: skip
        yield f.counters(
            "dunewatch_edge_frames_skipped_total",
            "camera frames skipped before detection, by reason: no_pose (no camera pose at "
            "the frame's time), out_of_order (older than the last scan), decimated (within "
            "the camera's decimation interval, on purpose)",
            ["reason"], [(["no_pose"], c.frames_without_pose),
                         (["out_of_order"], c.frames_out_of_order),
                         (["decimated"], c.frames_decimated)],
        )  # fmt: skip
        yield f.counter("dunewatch_edge_frames_late_total",
                        "camera frames processed later after exposure than the node's bound: "
                        "the loop is falling behind", c.frames_late)  # fmt: skip
        for name, value, text in [
            ("detector_failures", c.detector_failures,
             "frames whose detector raised an error (the frame is skipped)"),
            ("detections", c.detections, "detections the cameras' detectors reported"),
            ("measurements", c.measurements,
             "detections located on the ground and handed to the tracker"),
            ("track_batches", c.batches, "track batches stored for HQ"),
            ("telemetry_messages", c.telemetry, "drone telemetry messages stored for HQ"),
        ]:  # fmt: skip
            yield f.counter(f"dunewatch_edge_{name}_total", text, value)

    def _uplink(self, f: _Families) -> Iterator[Metric]:
        uplink = self.node.uplink
        c = uplink.counters
        for name, value, text in [
            ("published", c.published,
             "outbox messages handed to MQTT (a resend after a reconnect counts again)"),
            ("acknowledged", c.acknowledged, "messages the broker acknowledged"),
            ("backlog_sent", c.backlog_sent,
             "messages stored while the link was down, sent after the reconnect"),
            ("connects", c.connects, "connections to the broker"),
            ("disconnects", c.disconnects, "connections to the broker lost or closed"),
            ("publish_errors", c.publish_errors,
             "publishes the MQTT client or the broker refused (the message stays stored)"),
            ("confirmed", c.confirmed,
             "batches HQ confirmed its store holds (deleted from the outbox)"),
            ("resend_rounds", c.resend_rounds,
             "times the batches HQ had not confirmed in time were sent again"),
            ("bad_confirmations", c.bad_confirmations,
             "messages on the node's confirmation topic that did not parse or name another node"),
            ("lost_disk_full", c.lost_disk_full,
             "messages lost because the disk under the outbox was full"),
            ("refused_too_large", c.refused_too_large,
             "messages over the broker's size limit, refused before they were stored"),
        ]:  # fmt: skip
            yield f.counter(f"dunewatch_edge_uplink_{name}_total", text, value)
        yield f.gauge("dunewatch_edge_uplink_connected", "1 while connected to the broker, else 0",
                      c.connected)  # fmt: skip

        outbox = uplink.outbox
        yield f.gauge("dunewatch_edge_outbox_depth",
                      "messages in the outbox waiting for delivery (batches: HQ's confirmation)",
                      outbox.depth())  # fmt: skip
        yield f.gauge("dunewatch_edge_outbox_bytes", "payload bytes in the outbox",
                      outbox.size_bytes())  # fmt: skip
        yield f.gauge("dunewatch_edge_outbox_capacity",
                      "messages the outbox holds before it drops the oldest",
                      outbox.max_messages)  # fmt: skip
        oc = outbox.counters
        for name, value, text in [
            ("stored", oc.stored, "messages stored in the outbox"),
            ("delivered", oc.delivered, "messages deleted from the outbox once acknowledged"),
            ("dropped", oc.dropped_when_full,
             "messages dropped undelivered, oldest first, because the outbox was full"),
            ("dropped_disk_full", oc.dropped_disk_full,
             "messages dropped undelivered, oldest first, to make room on a full disk"),
        ]:  # fmt: skip
            yield f.counter(f"dunewatch_edge_outbox_{name}_total", text, value)

    def _tracker(self, f: _Families) -> Iterator[Metric]:
        c = self.node.tracker.counters
        yield f.counter("dunewatch_edge_tracker_scans_total", "sensor scans the tracker accepted",
                        c.scans)  # fmt: skip
        yield f.counter("dunewatch_edge_tracker_measurements_total",
                        "measurements in the scans the tracker accepted",
                        c.measurements)  # fmt: skip
        yield f.counters(
            "dunewatch_edge_tracker_rejected_measurements_total",
            "measurements the tracker refused, by reason: non_finite (NaN or inf), "
            "bad_covariance (not symmetric positive definite), stale_scan (in a scan older "
            "than the tracker's clock)",
            ["reason"], [(["non_finite"], c.rejected_non_finite),
                         (["bad_covariance"], c.rejected_covariance),
                         (["stale_scan"], c.rejected_stale_measurements)],
        )  # fmt: skip
        yield f.counter("dunewatch_edge_tracker_clutter_like_measurements_total",
                        "measurements their sensor judged clutter by their look (thermal "
                        "spots too cool for a warm body): they start no track",
                        c.clutter_like_measurements)  # fmt: skip
        yield f.counter("dunewatch_edge_tracker_stale_scans_total",
                        "scans refused for being older than the tracker's clock",
                        c.rejected_stale_scans)  # fmt: skip
        for name, value, text in [
            ("born", c.tracks_born, "tentative tracks started"),
            ("confirmed", c.tracks_confirmed, "tentative tracks that were confirmed"),
            ("deleted", c.tracks_deleted, "tracks deleted, tentative or confirmed"),
        ]:  # fmt: skip
            yield f.counter(f"dunewatch_edge_tracks_{name}_total", text, value)
        # The node's latest snapshot rather than tracker.tracks(): that would copy the
        # tracker's tables on the scrape thread while the loop may be resizing them,
        # whereas a snapshot is a finished copy the loop hands over in one assignment.
        tracks = self.node._tracks
        confirmed = 0 if tracks is None else int(tracks.confirmed.sum())
        yield f.gauge("dunewatch_edge_confirmed_tracks",
                      "confirmed tracks after the node's latest scan", confirmed)  # fmt: skip

    def _drones(self, f: _Families, now: float) -> Iterator[Metric]:
        connected, loss, age, losses, battery = [], [], [], [], []
        for driver in self.node.drivers:
            for vehicle in driver.receiver.vehicle_status(now):
                # The link too: a drone heard on two links (radio and LTE) is two series.
                labels = [str(vehicle.sysid), driver.config.url]
                health = vehicle.link
                connected.append((labels, health.state == "ok"))
                loss.append((labels, health.loss_fraction))
                losses.append((labels, health.link_losses))
                if health.heartbeat_age is not None:
                    age.append((labels, health.heartbeat_age))
                remaining = (vehicle.battery or {}).get("remaining", math.nan)
                if math.isfinite(remaining):  # NaN: the drone does not know its charge
                    battery.append((labels, remaining))
        labels = ["sysid", "link"]
        yield f.gauges("dunewatch_edge_drone_connected",
                       "1 while the drone's heartbeat is current, 0 once it timed out or before "
                       "the first", labels, connected)  # fmt: skip
        yield f.gauges("dunewatch_edge_drone_packet_loss_ratio",
                       "fraction of the drone's MAVLink frames lost (sequence gaps) since the "
                       "node started", labels, loss)  # fmt: skip
        yield f.gauges("dunewatch_edge_drone_heartbeat_age_seconds",
                       "seconds since the drone's last heartbeat", labels, age)  # fmt: skip
        yield f.gauges("dunewatch_edge_drone_battery_remaining_ratio",
                       "battery charge remaining, 0..1, as the drone reports it",
                       labels, battery)  # fmt: skip
        yield f.counters("dunewatch_edge_drone_link_losses_total",
                         "heartbeat timeouts of the drone's link", labels, losses)  # fmt: skip

    def _mavlink_links(self, f: _Families) -> Iterator[Metric]:
        links = [(driver.config.url, driver.connected, driver.receiver.counters_snapshot())
                 for driver in self.node.drivers]  # fmt: skip
        yield f.gauges("dunewatch_edge_mavlink_connected", "1 while the link's connection is open",
                       ["link"], [([url], up) for url, up, _ in links])  # fmt: skip
        for field, name, text in MAVLINK_COUNTERS:
            yield f.counters(f"dunewatch_edge_mavlink_{name}_total", text, ["link"],
                             [([url], getattr(c, field)) for url, _, c in links])  # fmt: skip
        yield f.counters(
            "dunewatch_edge_mavlink_rejected_frames_total",
            "frames rejected, by reason: truncated, bad_crc, unknown_message (no checksum to "
            "check), malformed, unsigned (signing on), bad_signature, stale_signature (replayed)",
            ["link", "reason"],
            [([url, reason], getattr(c, field))
             for url, _, c in links for field, reason in MAVLINK_REJECTIONS],
        )  # fmt: skip

    def _cameras(self, f: _Families) -> Iterator[Metric]:
        # Only camera drivers keep a status; other frame sources (recorded frames) have none.
        cameras = [(camera.name, camera.source.status()) for camera in self.node.cameras
                   if hasattr(camera.source, "status")]  # fmt: skip
        labels = ["camera"]
        yield f.gauges("dunewatch_edge_camera_connected", "1 while the camera's source is open",
                       labels, [([name], s.connected) for name, s in cameras])  # fmt: skip
        yield f.gauges("dunewatch_edge_camera_fps",
                       "frames per second accepted from the camera lately (0 when none came)",
                       labels, [([name], s.fps) for name, s in cameras])  # fmt: skip
        for field, name, text in CAMERA_COUNTERS:
            samples = [([camera], getattr(s.counters, field)) for camera, s in cameras]
            yield f.counters(f"dunewatch_edge_camera_{name}_total", text, labels, samples)
        yield f.counters(
            "dunewatch_edge_camera_rejected_frames_total",
            "frames read from the camera and rejected, by reason: empty, corrupt, malformed, "
            "wrong_size, black, saturated, flat, no_klv_time",
            ["camera", "reason"],
            [([camera, reason], count)
             for camera, s in cameras for reason, count in sorted(s.counters.rejected.items())],
        )  # fmt: skip
        yield from self._klv(f)

    def _klv(self, f: _Families) -> Iterator[Metric]:
        # A KLV camera's lens follows its metadata: its georeferencer holds the stream's state.
        streams = [(camera.name, camera.georeferencer.klv) for camera in self.node.cameras
                   if hasattr(camera.georeferencer, "klv")]  # fmt: skip
        yield f.counters("dunewatch_edge_klv_packets_total",
                         "KLV metadata packets read from the camera's stream", ["camera"],
                         [([name], k.counters.packets) for name, k in streams])  # fmt: skip
        yield f.counters("dunewatch_edge_klv_poses_total",
                         "KLV packets that gave a timed pose", ["camera"],
                         [([name], k.counters.timed_packets) for name, k in streams])  # fmt: skip
        yield f.counters(
            "dunewatch_edge_klv_refused_packets_total",
            "KLV packets refused, by reason: bad_checksum, malformed, not_a_key, other_set",
            ["camera", "reason"],
            [([name, reason], count) for name, k in streams
             for reason, count in sorted(k.refusals().items())],
        )  # fmt: skip


def edge_registry(node: EdgeNode) -> CollectorRegistry:
    """A registry of the node's metrics alone."""
    registry = CollectorRegistry()
    registry.register(EdgeCollector(node))
    return registry


class MetricsServer:
    """GET /metrics of `registry` over HTTP, on a thread of its own until `stop`."""

    def __init__(self, registry: CollectorRegistry, port: int, bind: str = "127.0.0.1"):
        # port 0 takes a free port (tests); `port` says which.
        self._server, self._thread = start_http_server(port, bind, registry=registry)

    @property
    def port(self) -> int:
        return self._server.server_port

    def stop(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
