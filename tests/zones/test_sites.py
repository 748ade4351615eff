"""Defended sites: the file form, time to reach and closest approach."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skyfence.zones.model import ZoneError
from skyfence.zones.sites import Site, check_sites, load_sites, parse_sites


def _site_doc(**props: object) -> dict[str, object]:
    p: dict[str, object] = {"id": "S1", "name": "plant", "radius_m": 300}
    p.update(props)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.0, 47.0]},
         "properties": p}]}


def test_a_sites_file_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps(_site_doc(ceiling_m=250)))
    (site,) = load_sites(path)
    assert site == Site(id="S1", name="plant", lon_deg=8.0, lat_deg=47.0, radius_m=300.0,
                        ceiling_m=250.0)


@pytest.mark.parametrize(("doc", "needle"), [
    (_site_doc(radius_m=-5), "radius_m must be a positive number"),
    (_site_doc(radius_m="big"), "radius_m must be a positive number"),
    (_site_doc(id=""), "has no id"),
    ({"type": "FeatureCollection"}, "'features' list"),
])
def test_bad_sites_are_named(doc: object, needle: str) -> None:
    with pytest.raises(ZoneError, match=needle):
        parse_sites(doc, file="sites.geojson")


def test_duplicate_and_bad_geometry_are_listed_together() -> None:
    doc = _site_doc()
    feats = doc["features"]
    assert isinstance(feats, list)
    feats.append(feats[0])
    feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": []},
                  "properties": {"id": "S3", "radius_m": 10}})
    with pytest.raises(ZoneError) as err:
        parse_sites(doc, file="sites.geojson")
    text = str(err.value)
    assert "2 bad site(s)" in text and "appears twice" in text and "not a Point" in text


def test_time_to_reach_and_closest_approach() -> None:
    site = Site(id="S", name="S", lon_deg=0.0, lat_deg=0.0, radius_m=300.0, ceiling_m=200.0)
    xy = np.array([[0.0, -1500.0], [400.0, -1500.0], [0.0, -100.0], [0.0, -1500.0]])
    v = np.array([[0.0, 20.0], [0.0, 20.0], [0.0, 0.0], [0.0, 20.0]])
    h = np.array([60.0, 60.0, 60.0, 500.0])
    var = np.full(4, 25.0)
    hits = check_sites([site], xy, v, h, var, var * 100, 120.0, site_xy=np.zeros((1, 2)))
    by = {int(t): k for k, t in enumerate(hits.track)}
    k = by[0]
    assert hits.time_to_reach_s[k] == pytest.approx(60.0)
    assert hits.cpa_m[k] == pytest.approx(0.0) and hits.cpa_s[k] == pytest.approx(75.0)
    assert hits.probability[k] > 0.99
    assert 1 not in by  # passes 400 m off a 300 m radius, ±50 m: P 0.02, not reported
    assert hits.inside[by[2]] and hits.time_to_reach_s[by[2]] == 0.0
    assert 3 not in by  # above the ceiling
    # With more doubt about its path, the one passing 400 m off is a threat of its own.
    hits = check_sites([site], xy[1:2], v[1:2], h[1:2], var[:1], np.full(1, 150.0**2), 120.0,
                       site_xy=np.zeros((1, 2)))
    assert len(hits) == 1 and np.isnan(hits.time_to_reach_s[0])
    assert hits.cpa_m[0] == pytest.approx(400.0) and 0.05 < hits.probability[0] < 0.5
