"""GeoJSON (RFC 7946) exports: current tracks, one track's history, alerts, our drones.

RFC 7946 positions are [longitude, latitude(, height in metres above the WGS84
ellipsoid)]: longitude FIRST, unlike every other position in this API. The
models below are the exports' schema; the functions build them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hq.api.models import AlertOut, DroneOut, FootprintOut, TrackOut
from hq.store.records import HistoryPoint
from wire.messages import Latitude, Longitude

MEDIA_TYPE = "application/geo+json"
Position = (tuple[Longitude, Latitude] | tuple[Longitude, Latitude, float])


class _Geo(BaseModel):
    model_config = ConfigDict(frozen=True)


class Point(_Geo):
    type: Literal["Point"] = "Point"
    coordinates: Position = Field(description="[lon, lat] or [lon, lat, alt]")


class LineString(_Geo):
    type: Literal["LineString"] = "LineString"
    coordinates: Annotated[list[Position], Field(min_length=2)]


class TrackFeature(_Geo):
    type: Literal["Feature"] = "Feature"
    id: int
    geometry: Point
    properties: TrackOut


class TrackCollection(_Geo):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[TrackFeature]


class HistoryProperties(_Geo):
    global_id: int
    times: list[float] = Field(description="UTC s of each coordinate, in the same order")


class HistoryFeature(_Geo):
    type: Literal["Feature"] = "Feature"
    id: int
    geometry: LineString | Point = Field(description="a Point when the window holds one point")
    properties: HistoryProperties


class HistoryCollection(_Geo):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[HistoryFeature] = Field(description="one feature, none for an empty window")


class AlertFeature(_Geo):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Point | None = Field(description="null for alerts without a position")
    properties: AlertOut


class AlertCollection(_Geo):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[AlertFeature]


class Polygon(_Geo):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[Annotated[list[Position], Field(min_length=4)]] = Field(
        description="one ring, closed (the first position again at the end), anticlockwise")


class DroneFeature(_Geo):
    type: Literal["Feature"] = "Feature"
    id: str = Field(description="the drone's id, 'site/node/system_id'")
    geometry: Point
    properties: DroneOut


class FootprintProperties(_Geo):
    kind: Literal["camera_footprint"] = "camera_footprint"
    drone_id: str
    label: str = Field(description="the drone's label")
    camera: str
    time: float = Field(description="UTC s of the drone's pose")


class FootprintFeature(_Geo):
    type: Literal["Feature"] = "Feature"
    id: str = Field(description="'site/node/system_id/camera'")
    geometry: Polygon
    properties: FootprintProperties


class DroneCollection(_Geo):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[DroneFeature | FootprintFeature] = Field(
        description="each drone as a Point, then each camera footprint on the ground as a "
                    "Polygon (left out while a corner of it looks above the horizon)")


def tracks_geojson(tracks: list[TrackOut]) -> TrackCollection:
    return TrackCollection(features=[
        TrackFeature(id=t.global_id, geometry=Point(coordinates=(t.lon, t.lat, t.alt)),
                     properties=t) for t in tracks])  # fmt: skip


def history_geojson(global_id: int, points: list[HistoryPoint]) -> HistoryCollection:
    if not points:
        return HistoryCollection(features=[])
    coordinates = [(p.lon, p.lat) for p in points]
    geometry = (LineString(coordinates=coordinates) if len(points) > 1
                else Point(coordinates=coordinates[0]))  # fmt: skip
    properties = HistoryProperties(global_id=global_id, times=[p.time for p in points])
    return HistoryCollection(features=[HistoryFeature(id=global_id, geometry=geometry,
                                                      properties=properties)])  # fmt: skip


def alerts_geojson(alerts: list[AlertOut]) -> AlertCollection:
    return AlertCollection(features=[
        AlertFeature(id=a.alert_id, properties=a,
                     geometry=None if a.lat is None or a.lon is None
                     else Point(coordinates=(a.lon, a.lat)))
        for a in alerts])  # fmt: skip


def drones_geojson(drones: list[DroneOut]) -> DroneCollection:
    features: list[DroneFeature | FootprintFeature] = [
        DroneFeature(id=d.drone_id, geometry=Point(coordinates=(d.lon, d.lat, d.alt)),
                     properties=d) for d in drones]  # fmt: skip
    for d in drones:
        for footprint in d.footprints:
            ring = _footprint_ring(footprint)
            if ring is not None:
                features.append(FootprintFeature(
                    id=f"{d.drone_id}/{footprint.camera}", geometry=Polygon(coordinates=[ring]),
                    properties=FootprintProperties(drone_id=d.drone_id, label=d.label,
                                                   camera=footprint.camera, time=d.time),
                ))  # fmt: skip
    return DroneCollection(features=features)


def _footprint_ring(footprint: FootprintOut) -> list[tuple[float, float]] | None:
    """The corners as a closed anticlockwise ring (RFC 7946's exterior rings), or None.

    The image's corners go top-left, top-right, bottom-right, bottom-left: clockwise on
    the ground seen from above, as on the screen. Reversed, they go anticlockwise.
    """
    if any(c is None for c in footprint.corners):
        return None
    ring = [(c.lon, c.lat) for c in reversed(footprint.corners)]
    return [*ring, ring[0]]
