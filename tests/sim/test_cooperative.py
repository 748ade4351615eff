from __future__ import annotations

import math

import numpy as np
import pytest

from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.scenario import SensorSpec
from skyfence.sim import cooperative
from skyfence.sim.cooperative import Transmitter, Transmitters

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
NAN3 = (math.nan, math.nan, math.nan)


def _receiver(**kw: object) -> SensorSpec:
    args: dict[str, object] = {
        "id": "rx", "kind": "cooperative", "position_enu_m": (0.0, 0.0, 10.0), "pd": 1.0,
        "noise_std": NAN3, "max_range_m": 8_000.0,
    }
    args.update(kw)
    return SensorSpec(**args)  # type: ignore[arg-type]


def _fleet(n: int, *, offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Transmitters:
    return Transmitters.of([
        Transmitter(target=i + 1, identity=cooperative.remote_id_identity(i + 1), category="2",
                    std_h_m=3.0 + i % 3, std_v_m=6.0 + i % 2,
                    offset_m=offset_m if i == n - 1 else (0.0, 0.0, 0.0))
        for i in range(n)
    ])


def test_identities() -> None:
    assert cooperative.icao_identity("4b43ac") == "icao:4B43AC"
    assert cooperative.icao_identity("0") == "icao:000000"
    with pytest.raises(ValueError, match="24-bit"):
        cooperative.icao_identity("1000000")
    assert cooperative.remote_id_identity(7) == "rid:SKYFA0000000007"


def test_reports_are_truth_plus_offset_plus_stated_noise() -> None:
    rng = np.random.default_rng(4)
    n, scans = 30, 400
    tx = _fleet(n, offset_m=(300.0, -400.0, 0.0))
    pts = np.column_stack([rng.uniform(-3000, 3000, (n, 2)), rng.uniform(30, 150, n)])
    sensor = _receiver(pd=0.8)
    errs: list[list[np.ndarray]] = [[] for _ in range(n)]
    hits = 0
    for _ in range(scans):
        z, R, k = cooperative.scan(ORIGIN, sensor, pts, tx, rng)
        hits += k.size
        std = np.stack([tx.std_h_m[k], tx.std_h_m[k], tx.std_v_m[k]], axis=-1)
        np.testing.assert_array_equal(R, np.stack([np.diag(s**2) for s in std]))
        for row, e in zip(k, z - pts[k], strict=True):
            errs[row].append(e)
    assert abs(hits / (n * scans) - 0.8) < 4 * math.sqrt(0.8 * 0.2 / (n * scans))
    for i in range(n):
        e = np.array(errs[i])
        want = tx.offset_m[i]
        std = np.array([tx.std_h_m[i], tx.std_h_m[i], tx.std_v_m[i]])
        assert np.all(np.abs(e.mean(axis=0) - want) < 4 * std / math.sqrt(len(e)))
        np.testing.assert_allclose(e.std(axis=0), std, rtol=0.2)
    assert tx.lies.tolist() == [False] * (n - 1) + [True]


def test_reception_follows_the_true_position() -> None:
    rng = np.random.default_rng(1)
    # The liar claims to be 5 km further out, beyond the receiver's range: still heard.
    tx = _fleet(3, offset_m=(0.0, 5_000.0, 0.0))
    pts = np.array([[0.0, 5_000.0, 100.0], [0.0, 9_000.0, 100.0], [0.0, 6_000.0, 100.0]])
    _, _, k = cooperative.scan(ORIGIN, _receiver(), pts, tx, rng)
    assert sorted(k.tolist()) == [0, 2]


def test_receivers_hear_their_protocol() -> None:
    tx = Transmitters.of([
        Transmitter(1, "icao:4B43AC", "A7", 12.0, 15.0),
        Transmitter(2, "rid:SKYFA0000000002", "2", 4.0, 5.0),
    ])
    adsb = _receiver(extra={"protocol": "adsb"})
    rid = _receiver(extra={"protocol": "remote_id"})
    assert tx.received_by(adsb).tolist() == [True, False]
    assert tx.received_by(rid).tolist() == [False, True]
    assert tx.received_by(_receiver()).tolist() == [True, True]
    with pytest.raises(ValueError, match="protocol"):
        tx.received_by(_receiver(extra={"protocol": "mode-s"}))


def test_json_round_trip_and_errors() -> None:
    tx = _fleet(4, offset_m=(500.0, 0.0, 0.0))
    back = Transmitters.from_json(tx.to_json())
    assert back.rows() == tx.rows()
    assert Transmitters.from_json([]).rows() == []
    with pytest.raises(InputError) as err:
        Transmitters.from_json([{"target": 1, "identity": "rid:X", "category": "2",
                                 "std_h_m": 0.0, "std_v_m": 1.0}])
    assert err.value.field == "simulator.transmitters[0].std_h_m"
    with pytest.raises(InputError):
        Transmitters.from_json({"target": 1})
