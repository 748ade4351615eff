"""node.toml: a good one reads; every bad key is named with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyfence.errors import InputError
from skyfence.node.config import load_config

GOOD = """
[node]
name = "hq"
origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }
window_s = 0.5

[http]
port = 8123

[storage]
path = "node.db"
journal = "node.journal"

[[sensors]]
id = "radar1"
kind = "radar"
position_enu_m = [0.0, 0.0, 12.0]
pd = 0.9
noise_std = { range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }

[[sources]]
id = "feed"
format = "jsonl"
sensor = "radar1"
transport = "tcp-listen"
port = 7001

[zones]
files = ["zones.geojson"]
"""


def test_a_good_config(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(GOOD)
    cfg = load_config(tmp_path / "node.toml")
    assert cfg.name == "hq" and cfg.window_s == 0.5 and cfg.http_port == 8123
    assert cfg.store_path == tmp_path / "node.db" and cfg.journal_path == tmp_path / "node.journal"
    assert cfg.scenario.sensors[0].id == "radar1"
    (src,) = cfg.sources
    assert (src.source.id, src.source.format, src.transport, src.port) == (
        "feed", "jsonl", "tcp-listen", 7001)
    assert cfg.zone_files == (tmp_path / "zones.geojson",)


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }', "",
     "node.origin", "set origin"),
    ('format = "jsonl"', 'format = "morse"', "sources[0].format", "use one of"),
    ('sensor = "radar1"\ntransport', 'sensor = "radar9"\ntransport', "sources[0].sensor",
     "radar1"),
    ("port = 7001", "port = 70001", "sources[0].port", "1–65535"),
    ('transport = "tcp-listen"', 'transport = "pigeon"', "sources[0].transport", "tcp-listen"),
    ("window_s = 0.5", 'window_s = "fast"', "node.window_s", "give a int or float"),
    ("[http]", "[htp]", "htp", "use node, http"),
])
def test_bad_keys_are_named(tmp_path: Path, old: str, new: str, key: str, fix: str) -> None:
    assert old in GOOD
    (tmp_path / "node.toml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "node.toml")
    assert key in str(err.value) and fix in str(err.value)


def test_not_toml(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text("[node\nname=")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(tmp_path / "node.toml")
