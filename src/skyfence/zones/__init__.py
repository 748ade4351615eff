"""No-fly zones: the model, importers (GeoJSON, EUROCAE ED-269 and ED-318), and the
vectorised breach monitor."""

from skyfence.zones.model import (
    Applicability,
    Circle,
    DailyPeriod,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    Volume,
    Zone,
    ZoneError,
    check_zone,
)

__all__ = [
    "Applicability",
    "Circle",
    "DailyPeriod",
    "HeightReference",
    "Limit",
    "Polygon",
    "Restriction",
    "Volume",
    "Zone",
    "ZoneError",
    "check_zone",
]
