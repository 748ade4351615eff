"""Write the demo's zones and defended site, ``src/skyfence/data/demo/zones.geojson``
and ``sites.geojson``, from the geometry in :mod:`skyfence.sim.demo`.

The zones and the site are laid out in the demo scenario's ENU frame (metres east and
north of its origin, Stadion Letzigrund in Zurich) so that its story happens; here
they are turned into WGS84 longitude and latitude (7 decimals, about 1 cm) with that
origin. The zones are fictitious: they are not the real geozones of Zurich.

    python tools/make_demo_zones.py            # rewrite the files
    python tools/make_demo_zones.py --check    # exit 1 if the shipped files differ
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from skyfence.sim import demo
from skyfence.zones.geojson import to_geojson
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
)

_OUT = Path(__file__).resolve().parents[1] / "src" / "skyfence" / "data" / "demo"
_AUTHORITY = "skyfence demo (fictitious)"
_GROUND = Limit(0.0, HeightReference.AGL)


def _lon_lat(east_m: float, north_m: float) -> tuple[float, float]:
    lat, lon, _ = demo.DEMO_ORIGIN.enu_to_geodetic(np.array([east_m, north_m, 0.0]))
    return round(float(lon), 7), round(float(lat), 7)


def _polygon(corners: tuple[tuple[float, float], ...]) -> Polygon:
    ring = [_lon_lat(e, n) for e, n in corners]
    return Polygon(rings=(tuple([*ring, ring[0]]),))


def zones() -> list[Zone]:
    ce, cn = demo.AUTHORISATION_CENTRE_EN_M
    lon, lat = _lon_lat(ce, cn)
    weekdays = Applicability(
        daily=(DailyPeriod(days=frozenset(range(5)), start_s=7 * 3600.0,
                           end_s=19 * 3600.0),),
        timezone="Europe/Zurich")
    return [
        Zone(id=demo.PROHIBITED_ID, name="Demo prohibited area", authority=_AUTHORITY,
             restriction=Restriction.PROHIBITED,
             volumes=(Volume(_polygon(demo.PROHIBITED_CORNERS_EN_M), _GROUND,
                             Limit(demo.PROHIBITED_UPPER_M, HeightReference.AGL)),),
             reason=("SECURITY",), message="No drones, at any time."),
        Zone(id=demo.AUTHORISATION_ID, name="Demo authorisation area",
             authority=_AUTHORITY, restriction=Restriction.AUTHORISATION_REQUIRED,
             volumes=(Volume(Circle(lon_deg=lon, lat_deg=lat,
                                    radius_m=demo.AUTHORISATION_RADIUS_M), _GROUND,
                             Limit(demo.AUTHORISATION_UPPER_M, HeightReference.AGL)),),
             exempt=frozenset({demo.RID_DRONE_IDENTITY}), reason=("PRIVACY",),
             message="Drones with an authorisation only; authorised Remote ID serials "
                     "are exempt."),
        Zone(id=demo.SCHEDULED_ID, name="Demo building site (cranes)", authority=_AUTHORITY,
             restriction=Restriction.AUTHORISATION_REQUIRED,
             volumes=(Volume(_polygon(demo.SCHEDULED_CORNERS_EN_M), _GROUND,
                             Limit(demo.SCHEDULED_UPPER_M, HeightReference.AGL)),),
             applicability=(weekdays,), reason=("SAFETY",),
             message="Cranes at work on weekdays, 07:00-19:00 local time."),
    ]


def sites() -> dict[str, Any]:
    lon, lat = _lon_lat(*demo.SITE_EN_M)
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"id": demo.SITE_ID, "name": demo.SITE_NAME,
                       "radius_m": demo.SITE_RADIUS_M, "ceiling_m": demo.SITE_CEILING_M},
    }]}


def texts() -> dict[str, str]:
    """File name → the text it should hold."""
    def dump(doc: dict[str, Any]) -> str:
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    return {"zones.geojson": dump(to_geojson(zones())), "sites.geojson": dump(sites())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=_OUT, help=f"folder (default: {_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file differs from what it would be")
    args = parser.parse_args(argv)
    stale = []
    for name, text in texts().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run tools/make_demo_zones.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
