"""A journal replayed gives the same tracks, bit for bit, whatever the order its
records arrived in within the reorder window — and the same as tracking the files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from skyfence.adapters.journal import JournalHeader, JournalWriter, Source
from skyfence.cli import main
from skyfence.scenario import read_detections, read_scenario


def _journal(directory: Path, path: Path, *, seed: int) -> None:
    """The scenario's detections as JSON Lines, one record per (time, sensor), received
    0.1–0.6 s after their time, so that records arrive out of time order."""
    scenario = read_scenario(directory)
    det = read_detections(directory, scenario)
    with open(directory / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))  # the cooperative columns as written
    rng = np.random.default_rng(seed)
    header = JournalHeader(scenario=scenario, sources=tuple(
        Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in scenario.sensors))
    records = []
    keys = np.stack([det.t, det.sensor.astype(float)], axis=1)
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    for a, b in zip(starts, np.r_[starts[1:], len(det)], strict=True):
        spec = scenario.sensors[int(det.sensor[a])]
        lines = []
        for k in range(a, b):
            obj: dict[str, object] = {"t": float(det.t[k]), "sensor": spec.id}
            names = {"radar": ("range_m", "azimuth_rad", "elevation_rad")}.get(
                spec.kind, ("east_m", "north_m", "up_m"))
            obj.update({n: float(v) for n, v in zip(names, det.z[k], strict=False)})
            if spec.kind == "cooperative":
                obj.update(identity=rows[k]["identity"], category=rows[k]["category"],
                           std_h_m=float(rows[k]["std_h_m"]), std_v_m=float(rows[k]["std_v_m"]))
            lines.append(json.dumps(obj))
        payload = ("\n".join(lines) + "\n").encode()
        records.append((float(det.t[a]) + rng.uniform(0.1, 0.6), int(det.sensor[a]), payload))
    records.sort(key=lambda r: r[0])
    with JournalWriter(path, header) as w:
        for t, s, p in records:
            w.append(t, s, p)


def test_replay_is_bit_for_bit_and_matches_tracking_the_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "scen"
    assert main(["simulate", str(scen), "--preset", "mixed", "--targets", "8",
                 "--duration-s", "30", "--seed", "2"]) == 0
    assert main(["track", str(scen), "--out", str(tmp_path / "direct.csv"), "--quiet"]) == 0
    for seed in (0, 1):
        _journal(scen, tmp_path / f"j{seed}.bin", seed=seed)
        capsys.readouterr()
        assert main(["replay", str(tmp_path / f"j{seed}.bin"), "--out",
                     str(tmp_path / f"replay{seed}.csv"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "0 damaged" in out and "0 detections later" in out
    direct = (tmp_path / "direct.csv").read_bytes()
    assert len(direct.splitlines()) > 100
    assert (tmp_path / "replay0.csv").read_bytes() == direct
    assert (tmp_path / "replay1.csv").read_bytes() == direct


def test_late_records_are_counted_not_lost_silently(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "scen"
    assert main(["simulate", str(scen), "--preset", "spread", "--targets", "3",
                 "--duration-s", "10"]) == 0
    scenario = read_scenario(scen)
    header = JournalHeader(scenario=scenario, sources=(
        Source(id="feed", format="jsonl", sensor=scenario.sensors[0].id),))
    path = tmp_path / "late.bin"
    line = {"sensor": scenario.sensors[0].id, "range_m": 1000.0, "azimuth_rad": 0.1,
            "elevation_rad": 0.1}
    with JournalWriter(path, header) as w:
        w.append(100.0, 0, (json.dumps({**line, "t": 99.9}) + "\n").encode())
        w.append(105.0, 0, (json.dumps({**line, "t": 104.9}) + "\n").encode())
        w.append(105.1, 0, (json.dumps({**line, "t": 99.5}) + "\n").encode())  # late
        w.append(105.2, 0, b"not json\n")
    capsys.readouterr()
    assert main(["replay", str(path), "--out", str(tmp_path / "t.csv"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 records" in out and "1 inputs rejected" in out and "1 detections later" in out


def test_a_journal_of_raw_adsb_and_remote_id_replays_bit_for_bit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real recordings as they came off the air: Beast frames of a flight at
    Paris-CDG, and Remote ID Wi-Fi beacons (each its own source and sensor)."""
    import math

    from skyfence.geo import Origin
    from skyfence.scenario import Scenario, SensorSpec

    data = Path(__file__).resolve().parent / "data"
    nan = (math.nan, math.nan, math.nan)
    scenario = Scenario(name="air", origin=Origin(49.0, 2.55, 120.0), sensors=(
        SensorSpec(id="adsb", kind="cooperative", position_enu_m=(0, 0, 0), pd=1.0,
                   noise_std=nan),
        SensorSpec(id="rid", kind="cooperative", position_enu_m=(0, 0, 0), pd=1.0,
                   noise_std=nan)))
    header = JournalHeader(scenario=scenario, sources=(
        Source(id="rx1", format="beast", sensor="adsb",
               options={"reference_lat_deg": 49.0097, "reference_lon_deg": 2.5479}),
        Source(id="wifi", format="remoteid-pcap", sensor="rid")))
    flight = [json.loads(x) for x in
              (data / "adsb" / "full_flight_short_first3000.jsonl").read_text().splitlines()]
    path = tmp_path / "air.bin"
    with JournalWriter(path, header) as w:
        for f in flight:
            frame = bytes.fromhex(f["frame"])
            if frame[0] >> 3 < 16:
                frame = frame[:7]  # the file pads short replies
            body = b"\x00" * 6 + b"\x80" + frame
            w.append(f["timestamp"], 0, b"\x1a" + (b"2" if len(frame) == 7 else b"3")
                     + body.replace(b"\x1a", b"\x1a\x1a"))
        w.append(flight[-1]["timestamp"] + 1.0, 1,
                 (data / "remoteid" / "odid_wifi_bcn_sample.pcap").read_bytes())
    outs = []
    for k in range(2):
        capsys.readouterr()
        assert main(["replay", str(path), "--out", str(tmp_path / f"t{k}.csv"),
                     "--quiet"]) == 0
        report = capsys.readouterr().out
        outs.append((tmp_path / f"t{k}.csv").read_bytes())
    assert "0 damaged" in report
    assert outs[0] == outs[1]
    rows = outs[0].decode().splitlines()
    assert any("icao:393322" in r for r in rows)
