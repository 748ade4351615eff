"""Parameters several routes share: ids, times, the bounding box."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Path, Query

from skyfence.server.errors import ApiError

#: Track and alert ids: int64, never negative.
Id = Annotated[int, Path(ge=0, le=2**63 - 1)]
#: An optional time filter, Unix seconds.
OptionalTime = Annotated[float | None, Query(allow_inf_nan=False, description="Unix seconds")]

BBOX_HELP = "lon0,lat0,lon1,lat1 in degrees (west, south, east, north)"
BBox = tuple[float, float, float, float]


def parse_bbox(text: str | None) -> BBox | None:
    """``lon0,lat0,lon1,lat1`` → numbers; lon0 > lon1 crosses the antimeridian."""
    if text is None:
        return None
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ApiError(422, f"bbox {text!r} is not four numbers",
                       f"give bbox={BBOX_HELP}, e.g. bbox=8.5,47.4,8.6,47.5")
    lon0, lat0, lon1, lat1 = values
    if not (-180 <= lon0 <= 180 and -180 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise ApiError(422, f"bbox {text!r} is not a box on the earth",
                       f"give bbox={BBOX_HELP}: longitudes within ±180, latitudes within "
                       "±90, south before north")
    return lon0, lat0, lon1, lat1


def in_bbox(lon: float, lat: float, box: BBox) -> bool:
    lon0, lat0, lon1, lat1 = box
    in_lon = lon0 <= lon <= lon1 if lon0 <= lon1 else (lon >= lon0 or lon <= lon1)
    return in_lon and lat0 <= lat <= lat1
