"""``skyfence serve`` as an integrator runs it: a node.toml with a sensor feed over TCP,
the API over HTTPS, the picture to TAK as CoT and to a GeoJSON file; and the outputs'
configuration errors, each naming the key and the fix."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from skyfence import sim
from skyfence.adapters.cot import parse_xml
from skyfence.errors import InputError
from skyfence.node.config import load_config
from skyfence.node.run import jsonl_payloads

from .helpers import sensor_toml

CONFIG = """
[node]
name = "hq west"
origin = {{ lat_deg = {lat}, lon_deg = {lon}, alt_m = {alt} }}
window_s = 0.2

[http]
host = "127.0.0.1"
port = {http_port}
certfile = "server.pem"
keyfile = "server.key"

[storage]
path = "node.db"

{sensors}

[[sources]]
id = "radar-feed"
format = "jsonl"
sensor = "radar"
transport = "tcp-listen"
host = "127.0.0.1"
port = {feed_port}

[[outputs.cot]]
transport = "udp"
host = "127.0.0.1"
port = {cot_port}
period_s = 1.0
omit_classes = ["bird"]

[[outputs.geojson]]
path = "picture.geojson"
period_s = 1.0
"""


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(tmp: Path, scenario, certificates: dict[str, Path],  # type: ignore[no-untyped-def]
                  ) -> tuple[Path, dict[str, int]]:
    for name in ("server.pem", "server.key"):
        (tmp / name).write_bytes(certificates[name].read_bytes())
    ports = {"http_port": _free_port(), "feed_port": _free_port(),
             "cot_port": _free_port(socket.SOCK_DGRAM)}
    o = scenario.origin
    text = CONFIG.format(lat=o.lat_deg, lon=o.lon_deg, alt=o.alt_m,
                         sensors=sensor_toml(scenario.sensors[0]), **ports)
    (tmp / "node.toml").write_text(text)
    return tmp / "node.toml", ports


def _wait_for(check, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except (OSError, httpx.HTTPError, ValueError) as err:
            last = err
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s} s (last error: {last})")


def test_serve_over_https_with_cot_and_geojson_outputs(tmp_path: Path,
                                                       certificates: dict[str, Path]) -> None:
    r = sim.build("spread", n_targets=8, seed=3, duration_s=25.0)
    config, ports = _write_config(tmp_path, r.scenario, certificates)
    payloads = jsonl_payloads(r.scenario, r.detections)
    # The sensor's clock is now: shift the recorded times to the wall clock.
    shift = time.time() + 1.0 - payloads[0][0]
    lines = []
    for t, _, payload in payloads:
        for line in payload.decode().splitlines():
            obj = json.loads(line)
            obj["t"] += shift
            lines.append((t + shift, json.dumps(obj)))

    cot_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cot_sock.bind(("127.0.0.1", ports["cot_port"]))
    cot_sock.settimeout(0.2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skyfence.cli", "serve", "--config",
                             str(config), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    ca = ssl.create_default_context(cafile=str(certificates["ca.pem"]))
    base = f"https://127.0.0.1:{ports['http_port']}"
    try:
        with httpx.Client(verify=ca, timeout=5.0) as client:
            _wait_for(lambda: client.get(f"{base}/healthz").status_code == 200, 60.0,
                      "the node answering over HTTPS")
            # Plain HTTP to the TLS port is not served.
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{ports['http_port']}/healthz", timeout=2.0)
            feed = socket.create_connection(("127.0.0.1", ports["feed_port"]), timeout=5.0)
            with feed:
                for t, line in lines:
                    wait = t - time.time()
                    if wait > 0:
                        time.sleep(wait)
                    feed.sendall(line.encode() + b"\n")
                datagrams: list[bytes] = []
                deadline = time.monotonic() + 10.0
                while time.monotonic() < deadline and len(datagrams) < 40:
                    with contextlib.suppress(TimeoutError):
                        datagrams.append(cot_sock.recv(65536))
            tracks = client.get(f"{base}/api/v1/tracks").json()
            metrics = client.get(f"{base}/metrics").text
        picture = json.loads((tmp_path / "picture.geojson").read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        cot_sock.close()
    # Interrupted (Ctrl-C) is exit status 130, and nothing on stderr but the status.
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert "map and API at https://127.0.0.1:" in out.decode()

    shown = {t["id"] for t in tracks["tracks"]} if isinstance(tracks, dict) else {
        t["id"] for t in tracks}
    assert len(shown) >= 5
    events = [parse_xml(d) for d in datagrams]
    assert events and all(e.uid.startswith("skyfence.hq-west.") for e in events)
    track_uids = {e.uid for e in events if ".track." in e.uid}
    assert len(track_uids) >= 5
    assert all(e.type.startswith("a-u-") for e in events if ".track." in e.uid)
    # At most one picture a second: the same uid is not repeated within a second.
    times: dict[str, list[int]] = {}
    for e in events:
        times.setdefault(e.uid, []).append(e.time_ms)
    for ts in times.values():
        gaps = [b - a for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
        assert all(g >= 999 for g in gaps), ts
    points = [f for f in picture["features"] if f["geometry"]["type"] == "Point"]
    assert picture["type"] == "FeatureCollection" and len(points) >= 5
    assert 'skyfence_output_pictures_total{output="cot[0]"}' in metrics
    sent = [line for line in metrics.splitlines()
            if line.startswith('skyfence_output_pictures_total{output="geojson[0]"}')]
    assert sent and float(sent[0].split()[-1]) >= 3
    assert 'skyfence_output_failed_total{output="cot[0]"} 0' in metrics


GOOD = """
[node]
name = "hq"
origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }

[[sensors]]
id = "radar1"
kind = "radar"
position_enu_m = [0.0, 0.0, 12.0]
pd = 0.9
noise_std = { range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }

[[outputs.cot]]
transport = "tcp"
host = "tak.example"
encoding = "protobuf"
friendly = ["rid:MFG1A0123456789"]
stale_s = 8.0

[[outputs.geojson]]
path = "out/picture.geojson"
groups = false
"""


def test_outputs_read_from_node_toml(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "node.toml").write_text(GOOD)
    cfg = load_config(tmp_path / "node.toml")
    (c,) = cfg.cot_outputs
    assert (c.transport, c.host, c.port, c.encoding) == ("tcp", "tak.example", 8087, "protobuf")
    assert c.cot.node == "hq" and c.cot.stale_s == 8.0
    assert c.cot.affiliation.friendly == ("rid:MFG1A0123456789",)
    (g,) = cfg.geojson_outputs
    assert g.path == tmp_path / "out" / "picture.geojson" and g.groups is False
    assert cfg.http_certfile is None


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('transport = "tcp"', 'transport = "carrier-pigeon"', "outputs.cot[0].transport",
     "udp, tcp, tls"),
    ('transport = "tcp"', 'transport = "tls"', "outputs.cot[0].certfile", "certfile"),
    ('encoding = "protobuf"', 'encoding = "yaml"', "outputs.cot[0].encoding", "xml"),
    ("stale_s = 8.0", "stale_s = -1", "outputs.cot[0].stale_s", "give e.g. 5.0"),
    ("stale_s = 8.0", 'omit_classes = ["ufo"]', "outputs.cot[0].omit_classes", "drone"),
    ("stale_s = 8.0", "colour = 3", "outputs.cot[0].colour", "unknown key"),
    ('path = "out/picture.geojson"', 'path = "nowhere/p.geojson"', "outputs.geojson[0].path",
     "create it"),
    ("[[outputs.geojson]]", "[[outputs.kml]]", "outputs.kml", "webhooks, cot, geojson"),
    ("[[sensors]]", '[http]\ncertfile = "node.toml"\n\n[[sensors]]', "http.keyfile",
     "keyfile"),
    ("[[sensors]]", '[http]\ncertfile = "none.pem"\n\n[[sensors]]', "http.certfile",
     "does not exist"),
])
def test_bad_outputs_are_named(tmp_path: Path, old: str, new: str, key: str, fix: str) -> None:
    (tmp_path / "out").mkdir()
    assert old in GOOD
    (tmp_path / "node.toml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "node.toml")
    assert key in str(err.value) and fix in str(err.value), str(err.value)
