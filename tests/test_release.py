"""Field-level release (``skyfence.release``): the grid, the words, the policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyfence.errors import InputError
from skyfence.geo import geodetic_to_ecef
from skyfence.release import (
    FULL,
    FieldPolicy,
    release_alert_rows,
    release_points,
    release_reason,
    snap_ecef,
    snap_geodetic,
)

COARSE = FieldPolicy(round_m=1000.0, round_mps=5.0, identity=False)


def test_a_cell_snaps_to_one_point_that_says_nothing_finer() -> None:
    rng = np.random.default_rng(3)
    cell = math.degrees(1000.0 / 6_371_000.0)
    # Many positions inside one cell (away from its edges): one grid point for all —
    # the longitude step does not depend on where in the cell a track is.
    lat = round(47.45 / cell) * cell + rng.uniform(-0.4, 0.4, 500) * cell
    lon0 = 8.56
    dlon = cell / math.cos(math.radians(round(47.45 / cell) * cell))
    lon = round(lon0 / dlon) * dlon + rng.uniform(-0.4, 0.4, 500) * dlon
    h = 1000.0 + rng.uniform(-400.0, 400.0, 500)
    s_lat, s_lon, s_h = snap_geodetic(lat, lon, h, 1000.0)
    assert np.unique(s_lat).size == np.unique(s_lon).size == np.unique(s_h).size == 1
    # On the grid, and a fixed point of it.
    again = snap_geodetic(s_lat, s_lon, s_h, 1000.0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (s_lat, s_lon, s_h), strict=True))


def test_snapping_moves_a_position_at_most_half_a_cell_and_says_so() -> None:
    rng = np.random.default_rng(4)
    lat, lon = rng.uniform(-60, 60, 200), rng.uniform(-180, 180, 200)
    h = rng.uniform(0, 3000, 200)
    pos = geodetic_to_ecef(lat, lon, h)
    P = np.tile(np.eye(6), (200, 1, 1))
    snapped, P2 = snap_ecef(pos, P, 500.0)
    moved = np.linalg.norm(snapped - pos, axis=1)
    assert moved.max() <= 0.5 * 500.0 * math.sqrt(3) * 1.01
    assert np.allclose(P2[:, :3, :3] - P[:, :3, :3], np.eye(3) * 500.0**2 / 12.0)
    assert np.array_equal(P2[:, 3:, 3:], P[:, 3:, 3:])


def test_alert_words_lose_identities_and_precision() -> None:
    text = "icao:4B1234 claims a position the sensors do not see"
    assert release_reason(text, COARSE) == "a cooperative report claims a position the " \
        "sensors do not see"
    assert release_reason("inside 'centre' (prohibited), 230 m from its edge", COARSE) \
        == "inside 'centre' (prohibited), 0 m from its edge"
    assert release_reason("fast low flyer: 244 m/s at 1640 m", COARSE) \
        == "fast low flyer: 245 m/s at 2000 m"
    assert release_reason(text, FULL) == text
    row = {"alert": 1, "reason": text, "lat_deg": 47.4512345, "lon_deg": 8.5612345,
           "height_m": 612.3}
    (out,) = release_alert_rows([row, {"alert": 2, "reason": "x", "lat_deg": None,
                                       "lon_deg": None, "height_m": None}], COARSE)[:1]
    assert out["height_m"] == 1000.0 and "icao" not in out["reason"]
    assert release_alert_rows([{"alert": 2, "lat_deg": None, "lon_deg": None,
                                "height_m": None}], COARSE)[0]["lat_deg"] is None


def test_history_points_are_released_by_column() -> None:
    rows = [{"t": float(k), "lat_deg": 47.45 + k * 1e-4, "lon_deg": 8.56, "height_m": 600.0,
             "v_east_mps": 12.3, "v_north_mps": -2.4, "v_up_mps": 0.4, "identity": "rid:X1",
             "flags": ["dark"]} for k in range(5)]
    out = release_points(rows, COARSE)
    assert [r["identity"] for r in out] == [""] * 5
    assert [(r["v_east_mps"], r["v_north_mps"], r["v_up_mps"]) for r in out] \
        == [(10.0, -0.0, 0.0)] * 5
    assert rows[0]["identity"] == "rid:X1"  # the input is left as it was
    assert release_points(rows, FULL) == rows


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"round_m": -1.0}, "round_m"), ({"round_m": math.nan}, "round_m"),
    ({"round_mps": 1e9}, "round_mps"), ({"identity": "no"}, "identity")])
def test_a_bad_policy_is_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        FieldPolicy(**kwargs)  # type: ignore[arg-type]
    assert field in str(err.value)
