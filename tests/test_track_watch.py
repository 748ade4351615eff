"""``skyfence track`` with zones, sites, alerts and a webhook, end to end: simulated
detections in, alert events out to a JSON Lines file and to a real HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from skyfence.alerts import ALERT_EVENT_SCHEMA
from skyfence.cli import main
from skyfence.scenario import read_scenario
from skyfence.webhook import verify_signature


class _Inbox(ThreadingHTTPServer):
    received: list[tuple[dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Inbox

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def inbox() -> Iterator[_Inbox]:
    server = _Inbox(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _zone_file(path: Path, scenario_dir: Path) -> None:
    """A prohibited square over the middle of the scenario, 0-1,000 m above ground, and
    one broken zone (a ring that does not close) that must be skipped."""
    origin = read_scenario(scenario_dir).origin
    corners = np.array([[-2000, -2000], [2000, -2000], [2000, 2000], [-2000, 2000]], float)
    lat, lon, _ = origin.enu_to_geodetic(np.c_[corners, np.zeros(4)])
    ring = [[x, y] for x, y in zip(lon.tolist(), lat.tolist(), strict=True)]
    good = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "properties": {"id": "CENTRE", "name": "centre", "restriction": "prohibited",
                           "lower_limit": 0, "upper_limit": 1000}}
    bad = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
           "properties": {"id": "OPEN", "restriction": "prohibited"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [good, bad]}))


def test_track_watches_zones_and_posts_signed_alerts(
        tmp_path: Path, inbox: _Inbox, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["simulate", str(tmp_path), "--preset", "spread", "--targets", "12",
                 "--duration-s", "40", "--seed", "3"]) == 0
    _zone_file(tmp_path / "zones.geojson", tmp_path)
    origin = read_scenario(tmp_path).origin
    sites = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point",
                                         "coordinates": [origin.lon_deg, origin.lat_deg]},
         "properties": {"id": "HQ", "radius_m": 1500, "ceiling_m": 2000}}]}
    (tmp_path / "sites.geojson").write_text(json.dumps(sites))
    monkeypatch.setenv("SKYFENCE_WEBHOOK_SECRET", "s3cret")
    url = f"http://127.0.0.1:{inbox.server_address[1]}/hook"
    capsys.readouterr()
    assert main(["track", str(tmp_path), "--out", str(tmp_path / "tracks.csv"), "--quiet",
                 "--zones", str(tmp_path / "zones.geojson"), "--sites",
                 str(tmp_path / "sites.geojson"), "--alerts", str(tmp_path / "alerts.jsonl"),
                 "--webhook", url]) == 0
    out, err = capsys.readouterr()
    assert "zone 'OPEN'" in err and "does not close" in err
    events = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    raised = [e for e in events if e["event"] == "raised"]
    assert f"{len(raised)} alerts raised" in out
    kinds = {e["kind"] for e in raised}
    assert {"zone_breach", "site_threat"} <= kinds, kinds
    declared = [name for name, *_ in ALERT_EVENT_SCHEMA]
    assert all(list(e) == declared for e in events)
    assert all(e["zone"] in (None, "CENTRE") for e in events)
    # The webhook got the same events, in order, each signed.
    assert len(inbox.received) == len(events)
    for (headers, body), event in zip(inbox.received, events, strict=True):
        assert json.loads(body) == event
        assert verify_signature("s3cret", body, headers["x-skyfence-timestamp"],
                                headers["x-skyfence-signature"])


def test_a_zone_file_that_is_not_json_is_reported_and_tracking_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path), "--preset", "spread", "--targets", "3",
                 "--duration-s", "10"]) == 0
    (tmp_path / "zones.json").write_text('{"type": "FeatureCollection", "features": [')
    capsys.readouterr()
    assert main(["track", str(tmp_path), "--out", str(tmp_path / "tracks.csv"), "--quiet",
                 "--zones", str(tmp_path / "zones.json"), "--alerts",
                 str(tmp_path / "alerts.jsonl")]) == 0
    out, err = capsys.readouterr()
    assert "zones.json" in err and "line 1" in err
    assert "0 alerts raised" in out
