"""Two ``skyfence serve`` nodes of two partners on one broker, as their integrators
configure them: police releases its radar to army and sends army its picture; army's
node hears police and shows the tracks, to army's token and to no token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from node.helpers import sensor_toml  # tests/node/helpers.py
from skyfence import sim
from skyfence.node.access import hash_token
from skyfence.node.run import jsonl_payloads

from .conftest import Broker

ARMY_TOKEN = "sf_army-viewer-token-for-the-test-0000000000"

POLICE = """
[node]
name = "police-hq"
origin = {{ lat_deg = {lat}, lon_deg = {lon}, alt_m = {alt} }}
window_s = 0.2

[[partners]]
id = "police"

[[partners]]
id = "army"

{sensor}
release = ["army"]

[[sources]]
id = "radar-feed"
format = "jsonl"
sensor = "radar"
transport = "tcp-listen"
port = {feed}

[http]
port = {http}

[[tokens]]
partner = "army"
role = "viewer"
sha256 = "{sha}"

[federation]
url = "{url}"
password_env = "POLICE_NATS_PASSWORD"

[[federation.send]]
to = "army"
period_s = 1.0
"""

ARMY = """
[node]
name = "army-hq"
origin = {{ lat_deg = {lat}, lon_deg = {lon}, alt_m = {alt} }}

[[partners]]
id = "army"

[[partners]]
id = "police"

[[sensors]]
id = "camp-radar"
kind = "radar"
position_enu_m = [0.0, 0.0, 10.0]
pd = 0.9
noise_std = {{ range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }}

[http]
port = {http}

[[tokens]]
partner = "army"
role = "viewer"
sha256 = "{sha}"

[federation]
url = "{url}"
password_env = "ARMY_NATS_PASSWORD"

[[federation.receive]]
from = "police"
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "skyfence.cli", "serve", "--config",
                             str(config), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env},
                            cwd=config.parent)


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=5.0)


def _wait(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def test_two_served_nodes_share_over_the_broker(tmp_path: Path, broker: Broker) -> None:
    r = sim.build("spread", n_targets=6, seed=11, duration_s=25.0)
    o = r.scenario.origin
    (radar,) = r.scenario.sensors
    sensor = sensor_toml(radar, sensor_id="radar")
    ports = {"police": _port(), "army": _port(), "feed": _port()}
    sha = hash_token(ARMY_TOKEN)
    (tmp_path / "police").mkdir()
    (tmp_path / "army").mkdir()
    (tmp_path / "police" / "node.toml").write_text(POLICE.format(
        lat=o.lat_deg, lon=o.lon_deg, alt=o.alt_m, sensor=sensor, feed=ports["feed"],
        http=ports["police"], sha=sha, url=broker.url))
    (tmp_path / "army" / "node.toml").write_text(ARMY.format(
        lat=o.lat_deg + 0.05, lon=o.lon_deg + 0.05, alt=o.alt_m, http=ports["army"], sha=sha,
        url=broker.url))
    env = {"POLICE_NATS_PASSWORD": broker.passwords["police"],
           "ARMY_NATS_PASSWORD": broker.passwords["army"]}
    procs = [_serve(tmp_path / "army" / "node.toml", env),
             _serve(tmp_path / "police" / "node.toml", env)]
    police = f"http://127.0.0.1:{ports['police']}"
    army = f"http://127.0.0.1:{ports['army']}"
    shift = time.time() + 2.0 - float(r.detections.t[0])
    try:
        for base in (police, army):
            _wait(lambda base=base: _get(f"{base}/healthz").status_code == 200, 60.0,
                  f"{base} answering")
        with socket.create_connection(("127.0.0.1", ports["feed"]), timeout=5.0) as feed:
            for t, _, payload in jsonl_payloads(r.scenario, r.detections):
                lines = [json.loads(x) for x in payload.decode().splitlines()]
                wait = t + shift - time.time()
                if wait > 0:
                    time.sleep(wait)
                feed.sendall("".join(json.dumps({**x, "t": x["t"] + shift}) + "\n"
                                     for x in lines).encode())
                if t - float(r.detections.t[0]) > 15.0:
                    break
            def army_tracks() -> list[dict[str, Any]] | None:
                rows = _get(f"{army}/api/v1/tracks", ARMY_TOKEN).json()["tracks"]
                return rows if len(rows) >= 4 else None

            at_army = _wait(army_tracks, 30.0, "police's tracks at army's node")
        released = _get(f"{police}/api/v1/tracks", ARMY_TOKEN).json()["tracks"]
        no_token = _get(f"{army}/api/v1/tracks")
        sensors = _get(f"{army}/api/v1/sensors", ARMY_TOKEN).json()["sensors"]
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        outs = [p.communicate(timeout=30) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 130 and b"Traceback" not in err, err.decode()[-2000:]
    assert no_token.status_code == 401
    # What army's node shows is what police computed for army, at the same places.
    assert len(released) >= 4
    for t in at_army:
        d = min(abs(t["lat_deg"] - u["lat_deg"]) + abs(t["lon_deg"] - u["lon_deg"])
                for u in released)
        assert d < 0.003, t
    fed = [s for s in sensors if s["source"] == "fed-police"]
    assert fed and fed[0]["status"] == "up" and fed[0]["detections"] > 0
