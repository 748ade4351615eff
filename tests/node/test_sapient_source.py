"""A SAPIENT source of a node, as ``skyfence serve`` runs it from node.toml: declared
sensor nodes register over real TCP and their detections become tracks; a node id
not declared, or declared for another partner, is refused, counted and audited; the
journal replays to the same detections; and the configuration's errors name the key
and the fix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pymap3d  # type: ignore[import-untyped]
import pytest
from google.protobuf.message import Message

from skyfence.adapters.sapient import SapientDecoder, SapientFrame, encode
from skyfence.adapters.sapient.proto import (
    detection_report_pb2,
    location_pb2,
    range_bearing_pb2,
    registration_pb2,
    sapient_message_pb2,
    status_report_pb2,
)
from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.ingest import replay_detections
from skyfence.node.access import hash_token, new_token
from skyfence.node.config import NodeConfig, parse_config
from skyfence.node.run import sapient_listen, service_from_config
from skyfence.node.service import NodeService
from skyfence.scenario import SensorSpec

from .helpers import sensor_toml

SapientMessage = sapient_message_pb2.SapientMessage
Reg = registration_pb2.Registration
RBCS = range_bearing_pb2.RangeBearingCoordinateSystem
LCS = location_pb2.LocationCoordinateSystem

ORIGIN = Origin(51.17, -1.82, 100.0)
NODE_LLH = (51.175, -1.80, 130.0)  # the police's radar, about 1.5 km north-east
POLICE_NODE = "a8654cdf-4328-47de-81fa-c495589e30c9"
ARMY_NODE = "1c0a5e4f-0d7b-4b8e-8f1e-3d2c9b7a6e54"
STRANGER = "f3b1e1aa-9d55-4c8e-b1a2-7e6f5d4c3b2a"

NODE_TOML = """
[node]
name = "sapient site"
origin = {{ lat_deg = {lat}, lon_deg = {lon}, alt_m = {alt} }}
window_s = 0.2

[storage]
path = "node.db"
journal = "node.journal"

[[partners]]
id = "police"

[[partners]]
id = "army"

{sensors}
[[sources]]
id = "sapient"
format = "sapient"
transport = "tcp-listen"
port = 7035
partner = "police"
"""


def _radar(sensor_id: str, position: Any) -> SensorSpec:
    return SensorSpec(id=sensor_id, kind="radar",
                      position_enu_m=tuple(float(v) for v in position),  # type: ignore[arg-type]
                      pd=0.9, noise_std=(5.0, 0.0035, 0.005), max_range_m=8000.0)


def _config_text() -> str:
    police = _radar("police-radar", ORIGIN.geodetic_to_enu(*NODE_LLH))
    army = _radar("army-radar", (-800.0, 300.0, 12.0))
    sensors = (sensor_toml(police, owner="police", sapient_node_id=POLICE_NODE)
               + sensor_toml(army, owner="army", sapient_node_id=ARMY_NODE))
    return NODE_TOML.format(lat=ORIGIN.lat_deg, lon=ORIGIN.lon_deg, alt=ORIGIN.alt_m,
                            sensors=sensors)


def _config(tmp: Path, text: str | None = None) -> NodeConfig:
    return parse_config(tomllib.loads(text or _config_text()), file="node.toml", base=tmp)


# --------------------------------------------------------------------------- a sensor node


def _message(node_id: str, t: float, content: str, body: Message) -> SapientMessage:
    msg = SapientMessage(node_id=node_id)
    msg.timestamp.FromNanoseconds(int(t * 1e9))
    getattr(msg, content).CopyFrom(body)
    return msg


def _registration() -> Reg:
    lt = Reg.LocationType(
        range_bearing_units=RBCS.RANGE_BEARING_COORDINATE_SYSTEM_DEGREES_M,
        range_bearing_datum=range_bearing_pb2.RANGE_BEARING_DATUM_TRUE)
    return Reg(
        node_definition=[Reg.NodeDefinition(node_type=Reg.NODE_TYPE_RADAR)],
        icd_version="BSI Flex 335 v2.0", name="perimeter radar", short_name="PR",
        mode_definition=[Reg.ModeDefinition(
            mode_name="Default", mode_type=Reg.MODE_TYPE_PERMANENT,
            detection_definition=[Reg.DetectionDefinition(location_type=lt)])])


def _status() -> status_report_pb2.StatusReport:
    return status_report_pb2.StatusReport(
        report_id="01GGYFBAV4EEPB1398MKQ47E6E", system=status_report_pb2.StatusReport.SYSTEM_OK,
        info=status_report_pb2.StatusReport.INFO_NEW, mode="Default",
        node_location=location_pb2.Location(
            x=NODE_LLH[1], y=NODE_LLH[0], z=NODE_LLH[2],
            coordinate_system=LCS.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M,
            datum=location_pb2.LOCATION_DATUM_WGS84_E))


def _reports(node_id: str, t0: float, n: int) -> list[bytes]:
    """A drone flying east at 15 m/s, 300 m up, seen once a second."""
    out = []
    for k in range(n):
        enu = np.array([200.0 + 15.0 * k, 900.0, 300.0])
        target = ORIGIN.enu_to_geodetic(enu)
        az, el, rng = pymap3d.geodetic2aer(*(float(v) for v in target), *NODE_LLH)
        rb = range_bearing_pb2.RangeBearing(
            range=float(rng), azimuth=float(az), elevation=float(el), range_error=5.0,
            azimuth_error=0.2, elevation_error=0.3,
            coordinate_system=RBCS.RANGE_BEARING_COORDINATE_SYSTEM_DEGREES_M,
            datum=range_bearing_pb2.RANGE_BEARING_DATUM_TRUE)
        report = detection_report_pb2.DetectionReport(
            report_id=f"01GGYFBAXGDG7AGAHRZ6XS{k:04d}", object_id="OBJ1", range_bearing=rb)
        out.append(encode(_message(node_id, t0 + k, "detection_report", report)))
    return out


async def _replies(reader: asyncio.StreamReader, n: int) -> list[SapientMessage]:
    dec = SapientDecoder()
    out: list[SapientMessage] = []
    while len(out) < n:
        data = await asyncio.wait_for(reader.read(1 << 16), 5.0)
        if not data:
            break
        out += [r.message for r in dec.feed(data) if isinstance(r, SapientFrame)]
    return out


async def _register(port: int, node_id: str
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, SapientMessage]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode(_message(node_id, time.time(), "registration", _registration())))
    await writer.drain()
    ack = (await _replies(reader, 1))[0]  # a refusal is followed by an Error
    return reader, writer, ack


async def _until(check: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- the node


async def _session(tmp: Path) -> dict[str, Any]:
    cfg = _config(tmp)
    (sc,) = cfg.sources
    service = service_from_config(cfg)
    ports: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(service.run(tick_s=0.05)),
             asyncio.create_task(sapient_listen(service, replace(sc, port=0), ports.put_nowait))]
    out: dict[str, Any] = {"service": service}
    try:
        port = await asyncio.wait_for(ports.get(), 5.0)
        st = service.sources["sapient"]
        out["before"] = {k: dict(v) for k, v in st.nodes.items()}

        _, writer, ack = await _register(port, POLICE_NODE)
        out["ack"] = ack.registration_ack
        t0 = time.time() - 19.0  # the last report now: its track is live
        writer.write(encode(_message(POLICE_NODE, t0, "status_report", _status())))
        writer.write(b"".join(_reports(POLICE_NODE, t0, 20)))
        await writer.drain()
        await _until(lambda: any(t["status"] == "confirmed"
                                 for t in service.snapshot("police")["tracks"]),
                     "a confirmed track from the SAPIENT radar")
        out["tracks"] = service.snapshot("police")["tracks"]
        out["army_tracks"] = service.snapshot("army")["tracks"]
        out["rows"] = {r["sensor"]: r for r in service.sensor_status()}
        out["metrics"] = service.metrics_text()

        # A node id nobody declared, then the army's node on the police's source.
        for key, node_id in (("stranger", STRANGER), ("army", ARMY_NODE)):
            r2, w2, ack2 = await _register(port, node_id)
            out[key] = ack2.registration_ack
            out[f"{key}_eof"] = await asyncio.wait_for(r2.read(), 5.0)  # disconnected
            w2.close()
        out["refused"] = st.rejected["unauthenticated sensor"]

        writer.close()
        await _until(lambda: st.nodes["police-radar"]["status"] == "down",
                     "the radar shown down")
        out["after"] = dict(st.nodes["police-radar"])
        await _until(lambda: service._queue.empty(), "the queue drained")
        await asyncio.sleep(0.3)
        out["detections"] = st.detections
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        service.close()
    return out


def test_declared_sapient_nodes_feed_the_tracker_and_others_are_refused(tmp_path: Path
                                                                        ) -> None:
    got = asyncio.run(_session(tmp_path))
    assert got["before"] == {
        "army-radar": {"status": "waiting", "detail": f"SAPIENT node {ARMY_NODE}",
                       "detections": 0},
        "police-radar": {"status": "waiting", "detail": f"SAPIENT node {POLICE_NODE}",
                         "detections": 0}}
    assert got["ack"].acceptance
    # The radar's detections, measured from its declared position, make the drone's track.
    (track,) = [t for t in got["tracks"] if t["status"] == "confirmed"]
    assert track["speed_mps"] == pytest.approx(15.0, abs=2.0)
    assert got["army_tracks"] == []  # the police's radar is released to nobody else
    row = got["rows"]["police-radar"]
    assert row["status"] == "up" and "registered" in row["detail"]
    assert row["format"] == "sapient" and row["detections"] == 20
    assert got["rows"]["army-radar"]["status"] == "waiting"
    assert 'skyfence_sensor_up{source="sapient",sensor="police-radar"} 1' in got["metrics"]
    assert 'skyfence_sensor_up{source="sapient",sensor="army-radar"} 0' in got["metrics"]

    stranger, army = got["stranger"], got["army"]
    assert not stranger.acceptance and "not declared" in stranger.ack_response_reason[0]
    assert not army.acceptance
    assert "registered to 'army', not to 'police'" in army.ack_response_reason[0]
    assert got["stranger_eof"] == got["army_eof"] == b""
    assert got["refused"] == 2
    assert got["after"]["status"] == "down"

    # Refusals are on the record; the journal replays to the same detections.
    service: NodeService = got["service"]
    with contextlib.closing(sqlite3.connect(tmp_path / "node.db")) as db:
        reasons = [r[0] for r in db.execute(
            "SELECT detail FROM audit WHERE action = 'source.refused'")]
    assert len(reasons) == 2 and STRANGER in reasons[0] and ARMY_NODE in reasons[1]
    _, det, stats = replay_detections(tmp_path / "node.journal", window_s=0.2)
    assert stats.detections == got["detections"] == 20 and stats.rejected == 0
    index = service.scenario.sensor_index()["police-radar"]
    assert (det.sensor == index).all()


# --------------------------------------------------------------------------- skyfence serve


SERVE_EXTRA = """
[http]
host = "127.0.0.1"
port = {http_port}

[[sources]]
id = "army-push"
format = "jsonl"
sensor = "army-radar"
transport = "http"

[[tokens]]
partner = "police"
role = "admin"
sha256 = "{admin}"

[[tokens]]
partner = "army"
role = "sensor"
source = "army-push"
sha256 = "{pusher}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _blocking_replies(sock: socket.socket) -> list[SapientMessage]:
    dec = SapientDecoder()
    while True:
        got = [r.message for r in dec.feed(sock.recv(1 << 16)) if isinstance(r, SapientFrame)]
        if got:
            return got


def _poll(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
            if got := check():
                return got
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def test_skyfence_serve_with_a_sapient_node_and_a_pushing_sensor(tmp_path: Path) -> None:
    admin, pusher = new_token(), new_token()
    ports = {"http_port": _free_port(), "sapient": _free_port()}
    text = _config_text().replace("port = 7035", f"port = {ports['sapient']}") + \
        SERVE_EXTRA.format(http_port=ports["http_port"], admin=hash_token(admin),
                           pusher=hash_token(pusher))
    (tmp_path / "node.toml").write_text(text)
    check = subprocess.run([sys.executable, "-m", "skyfence.cli", "config", "check",
                            str(tmp_path / "node.toml")], capture_output=True, text=True,
                           cwd=tmp_path, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([sys.executable, "-m", "skyfence.cli", "serve", "--config",
                             str(tmp_path / "node.toml"), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{ports['http_port']}"
    as_admin = {"Authorization": f"Bearer {admin}"}
    as_pusher = {"Authorization": f"Bearer {pusher}"}
    try:
        _poll(lambda: httpx.get(f"{base}/healthz").status_code == 200, "the node answering")
        with socket.create_connection(("127.0.0.1", ports["sapient"]), timeout=5.0) as node:
            node.sendall(encode(_message(POLICE_NODE, time.time(), "registration",
                                         _registration())))
            assert _blocking_replies(node)[0].registration_ack.acceptance
            t0 = time.time() - 19.0  # the last report now: its track is live
            node.sendall(encode(_message(POLICE_NODE, t0, "status_report", _status()))
                         + b"".join(_reports(POLICE_NODE, t0, 20)))

            def sensors() -> dict[str, Any]:
                rows = httpx.get(f"{base}/api/v1/sensors", headers=as_admin).json()["sensors"]
                return {(r["source"], r["sensor"]): r for r in rows}

            _poll(lambda: any(t["status"] == "confirmed" for t in httpx.get(
                f"{base}/api/v1/tracks", headers=as_admin).json()["tracks"]),
                "a confirmed track")
            row = _poll(lambda: (r := sensors()[("sapient", "police-radar")])["detections"]
                        == 20 and r, "the SAPIENT radar's detections")
            assert row["status"] == "up" and "registered" in row["detail"]
            with socket.create_connection(("127.0.0.1", ports["sapient"]),
                                          timeout=5.0) as stranger:
                stranger.sendall(encode(_message(STRANGER, time.time(), "registration",
                                                 _registration())))
                ack = _blocking_replies(stranger)[0].registration_ack
                assert not ack.acceptance and "not declared" in ack.ack_response_reason[0]
        _poll(lambda: sensors()[("sapient", "police-radar")]["status"] == "down",
              "the radar shown down once it hung up")

        line = json.dumps({"t": time.time(), "sensor": "army-radar", "range_m": 900.0,
                           "azimuth_rad": 1.0, "elevation_rad": 0.1}) + "\n"
        got = httpx.post(f"{base}/api/v1/ingest/army-push", content=line, headers=as_pusher)
        assert got.status_code == 202 and got.json()["bytes"] == len(line), got.text
        assert httpx.post(f"{base}/api/v1/ingest/sapient", content=line,
                          headers=as_pusher).status_code == 403
        assert httpx.post(f"{base}/api/v1/ingest/army-push", content=line).status_code == 401
        assert httpx.get(f"{base}/api/v1/tracks", headers=as_pusher).status_code == 403
        # The army's sensor is not released to the police: node-wide metrics show it.
        metrics = _poll(lambda: (m := httpx.get(f"{base}/metrics", headers=as_admin).text)
                        and 'skyfence_source_detections_total{source="army-push"} 1' in m
                        and m, "the pushed detection decoded")
        assert ("army-push", "army-radar") not in sensors()
        assert 'skyfence_sensor_up{source="sapient",sensor="police-radar"} 0' in metrics
        assert ('skyfence_source_rejected_total{source="sapient",'
                'reason="unauthenticated sensor"} 2') in metrics  # the stranger; the push
        assert ('skyfence_source_rejected_total{source="army-push",'
                'reason="unauthenticated sensor"} 1') in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 130, err.decode()[-2000:]  # interrupted, as Ctrl-C
    assert "Traceback" not in err.decode()


# --------------------------------------------------------------------------- config


def test_sapient_source_config(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    (sc,) = cfg.sources
    assert sc.source.format == "sapient" and sc.source.sensor == "police-radar"
    opts = sc.source.options
    assert opts["nodes"] == {POLICE_NODE: "police-radar", ARMY_NODE: "army-radar"}
    assert opts["owners"] == {POLICE_NODE: "police", ARMY_NODE: "army"}
    assert opts["serves"] == ["police-radar", "army-radar"] and opts["partner"] == "police"
    assert cfg.scenario.sensors[0].extra["sapient_node_id"] == POLICE_NODE


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('transport = "tcp-listen"\nport = 7035', 'transport = "tcp-connect"\nport = 7035',
     "sources[0].transport", "tcp-listen"),
    ('format = "sapient"', 'format = "sapient"\nsensor = "police-radar"', "sources[0].sensor",
     "sensors = ["),
    ('partner = "police"', 'partner = "navy"', "sources[0].partner", "[[partners]]"),
    ('partner = "police"', 'partner = "police"\nsensors = ["army-radar"]',
     "sources[0].sensors[0]", "only the partner's sensors"),
    ('partner = "police"', 'sensors = ["radar9"]', "sources[0].sensors[0]", "police-radar"),
    ('partner = "police"', "options = { max_offset_m = -1 }",
     "sources[0].options.max_offset_m", "metres"),
    ('partner = "police"', "options = { speed = 1 }", "sources[0].options.speed",
     "max_offset_m"),
    (f'sapient_node_id = "{ARMY_NODE}"', 'sapient_node_id = "radar-2"',
     "sensors[1].sapient_node_id", "node id"),
    (f'sapient_node_id = "{ARMY_NODE}"', f'sapient_node_id = "{POLICE_NODE.upper()}"',
     "sensors[1].sapient_node_id", "its own node id"),
])
def test_sapient_config_errors_name_the_key_and_the_fix(tmp_path: Path, old: str, new: str,
                                                        key: str, fix: str) -> None:
    text = _config_text()
    assert old in text
    with pytest.raises(InputError) as err:
        _config(tmp_path, text.replace(old, new, 1))
    assert err.value.field == key and fix in (err.value.fix or ""), err.value


def test_a_sapient_source_needs_declared_nodes(tmp_path: Path) -> None:
    text = _config_text().replace(f'sapient_node_id = "{POLICE_NODE}"\n', "").replace(
        f'sapient_node_id = "{ARMY_NODE}"\n', "")
    with pytest.raises(InputError) as err:
        _config(tmp_path, text)
    assert err.value.field == "sources[0].format" and "sapient_node_id" in (err.value.fix or "")
