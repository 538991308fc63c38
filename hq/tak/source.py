"""What TAK is shown: `TakSource`, and `StoreSource`, its reading of HQ's store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from hq.store.interface import Store
from hq.store.records import FusedTrack
from wire.messages import Alert, TrackStatus, VehicleTelemetry


class TakSource(Protocol):
    def current_tracks(self) -> Sequence[FusedTrack]:
        """The fused tracks to show; ended ones may be included (they are sent as removals)."""

    def open_alerts(self) -> Sequence[Alert]:
        """The distress alerts whose condition has not cleared."""

    def labels(self) -> Mapping[int, OperatorLabel]:
        """What operators set on tracks, by global id."""

    def drones(self) -> Sequence[VehicleTelemetry]:
        """Our own drones, each one's newest telemetry."""


class OperatorLabel(Protocol):
    affiliation: str | None  # None: unknown, the default for every detected object
    target_class: str | None  # None: the class fusion gives


class StoreSource:
    """A `TakSource` over HQ's store: live tracks, and distress alerts still active.

    An acknowledged distress alert stays in: an operator having seen it at HQ
    does not rescue anyone, and the field teams in TAK still need the marker
    until the condition clears.
    """

    def __init__(self, store: Store,
                 statuses: Sequence[TrackStatus] = (TrackStatus.CONFIRMED, TrackStatus.COASTING),
                 alert_limit: int = 500,
                 labels: Callable[[], Mapping[int, OperatorLabel]] | None = None):  # fmt: skip
        """`labels`: operators' labels (the store's track_labels); None: there are none."""
        self.store = store
        self.statuses = tuple(statuses)
        self.alert_limit = alert_limit
        self._labels = labels

    def current_tracks(self) -> list[FusedTrack]:
        return [t for status in self.statuses for t in self.store.current_tracks(status=status)]

    def open_alerts(self) -> list[Alert]:
        # Distress alerts only, in the query: other kinds must not crowd an active one out
        # of the limit (it would be sent as cancelled).
        records = self.store.alerts(limit=self.alert_limit, alert_type="distress")
        return [r.alert for r in records if r.alert.active]

    def labels(self) -> Mapping[int, OperatorLabel]:
        return {} if self._labels is None else self._labels()

    def drones(self) -> list[VehicleTelemetry]:
        return self.store.drones()
