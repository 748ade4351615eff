"""The API's models declare exactly the fields the engine writes."""

from __future__ import annotations

from typing import Any, get_args

from skyfence.alerts import ALERT_EVENT_SCHEMA, EVENTS, KINDS
from skyfence.classify import CLASSES
from skyfence.node.engine import GROUP_FIELDS, TRACK_FIELDS, alert_row
from skyfence.server import models as m
from skyfence.store import ALERT_SCHEMA, TRACK_HISTORY_SCHEMA
from skyfence.types import TrackFlag


def _names(model: Any) -> set[str]:
    return {f.alias or k for k, f in model.model_fields.items()}


def test_rows_match_the_engine_schemas() -> None:
    assert _names(m.Track) == {n for n, *_ in TRACK_FIELDS}
    assert _names(m.Group) == {n for n, *_ in GROUP_FIELDS}
    assert _names(m.AlertEvent) == {n for n, *_ in ALERT_EVENT_SCHEMA}
    assert _names(m.ActiveAlert) == set(alert_row(_Alert()))


class _Alert:
    """An alert of the book with every field set."""

    id, kind, severity, reason = 1, "swarm", "warning", "r"
    track = zone = site = group = ttb = probability = None
    raised_t = updated_t = 0.0
    acknowledged_by = acknowledged_t = None
    position = (47.0, 8.0, 500.0)


def test_the_enumerations_match() -> None:
    assert set(get_args(m.TrackClass)) == set(CLASSES)
    assert set(get_args(m.TrackFlagName)) == {str(f.name).lower() for f in TrackFlag}
    assert set(get_args(m.AlertKind)) == set(KINDS)
    assert set(get_args(m.AlertEventName)) == set(EVENTS)


def test_stored_rows_map_onto_the_api_rows() -> None:
    # Every stored alert column but the store's own bookkeeping reaches the API.
    assert _names(m.Alert) - {"active"} == set(ALERT_SCHEMA.names) - {"state"}
    stored = set(TRACK_HISTORY_SCHEMA.names) - {"track", "class_name"} | {"class"}
    assert _names(m.HistoryPoint) == stored
