"""node.toml: a good one reads; every bad key is named with its fix."""

from __future__ import annotations

from dataclasses import replace
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
    ("[http]", "[htp]", "htp", "use federation, http, node, outputs, partners"),
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


PARTNERS = GOOD.replace("[[sensors]]", '''[[partners]]
id = "police"

[[partners]]
id = "army"

[[tokens]]
partner = "army"
role = "viewer"
sha256 = "64195612c3740e8209eeeab804ac881b14f7a96c28d832b24a427fe966684104"
name = "army desk"

[[sensors]]
owner = "police"
release = ["army"]''', 1).replace("[[sources]]", '''[[sensors]]
id = "camera1"
kind = "bearing"
modality = "eo"
position_enu_m = [100.0, 0.0, 12.0]
pd = 0.8
noise_std = { azimuth_rad = 0.003, elevation_rad = 0.003 }

[[sources]]''', 1)


def test_partners_release_and_tokens(tmp_path: Path) -> None:
    from skyfence.node.access import Access, Role, hash_token

    (tmp_path / "node.toml").write_text(PARTNERS)
    cfg = load_config(tmp_path / "node.toml")
    assert cfg.release is not None and cfg.home == "police"
    # camera1 has no owner: the home partner's, released to nobody else.
    assert cfg.release.released_to("radar1") == {"police", "army"}
    assert cfg.release.released_to("camera1") == {"police"}
    (token,) = cfg.tokens
    assert (token.partner, token.role, token.name) == ("army", Role.VIEWER, "army desk")
    access = Access(cfg.tokens, home=cfg.home)
    assert access.check(None) is None and access.check("sf_wrong") is None
    assert hash_token("sf_O-tgNNoLh1omSUWk9_L1T5wzkf8P2B0Opre0iTCQzUg") == token.sha256
    caller = access.check("sf_O-tgNNoLh1omSUWk9_L1T5wzkf8P2B0Opre0iTCQzUg")
    assert caller is not None and (caller.partner, caller.role) == ("army", Role.VIEWER)


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('release = ["army"]', 'release = ["navy"]', "sensors.radar1.release", "police, army"),
    ('owner = "police"', 'owner = "navy"', "sensors.radar1.owner", "police, army"),
    ('role = "viewer"', 'role = "king"', "tokens[0].role", "admin, operator"),
    ('partner = "army"', 'partner = "navy"', "tokens[0].partner", "police, army"),
    ('sha256 = "6419', 'sha256 = "zz19', "tokens[0].sha256", "skyfence token new"),
    ('id = "army"', 'id = "Army Corps"', "partners.id", "lower-case"),
])
def test_bad_partner_keys_are_named(tmp_path: Path, old: str, new: str, key: str,
                                    fix: str) -> None:
    from skyfence.node.access import Access

    assert old in PARTNERS
    (tmp_path / "node.toml").write_text(PARTNERS.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        cfg = load_config(tmp_path / "node.toml")
        Access(cfg.tokens, home=cfg.home)
    assert key in str(err.value) and fix in str(err.value), str(err.value)


def test_owner_without_partners_is_refused(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(GOOD.replace("[[sensors]]", '[[sensors]]\nowner = "x"'))
    with pytest.raises(InputError, match=r"no .*partners"):
        load_config(tmp_path / "node.toml")


def test_a_node_of_partners_keeps_each_view_in_its_own_store(tmp_path: Path) -> None:
    from skyfence.node.run import service_from_config

    (tmp_path / "node.toml").write_text(PARTNERS.replace('files = ["zones.geojson"]', ""))
    service = service_from_config(load_config(tmp_path / "node.toml"))
    try:
        # police sees radar1 and camera1; army radar1 only: two views, two stores.
        assert service.view("police").sensor_ids == ("radar1", "camera1")
        assert service.view("army").sensor_ids == ("radar1",)
        assert service.view("police").store is not service.view("army").store
        assert service.access.check("sf_wrong") is None
    finally:
        service.close()
    assert sorted(p.name for p in tmp_path.glob("node*.db")) == ["node.db", "node.view1.db"]


PUSH = PARTNERS.replace("[zones]", '''[[sources]]
id = "camera-push"
format = "jsonl"
sensor = "camera1"
transport = "http"

[[tokens]]
partner = "police"
role = "sensor"
source = "camera-push"
sha256 = "4a1c5ce1a5b0f6c6a4fd1d0e1b0d8b0e2c3d4e5f60718293a4b5c6d7e8f90a1b"
name = "camera 1"

[zones]''', 1)


def test_a_sensor_token_is_bound_to_a_source_it_pushes_to(tmp_path: Path) -> None:
    from skyfence.node.access import Role
    from skyfence.node.run import service_from_config

    (tmp_path / "node.toml").write_text(PUSH)
    cfg = load_config(tmp_path / "node.toml")
    viewer, sensor = cfg.tokens
    assert viewer.source == "" and (sensor.role, sensor.source) == (Role.SENSOR, "camera-push")
    assert [s.transport for s in cfg.sources] == ["tcp-listen", "http"]
    service = service_from_config(replace(cfg, zone_files=()))
    try:
        assert service.pushed == {"camera-push"}
    finally:
        service.close()


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('source = "camera-push"\n', "", "tokens[1].source", 'source = "'),
    ('source = "camera-push"', 'source = "feed"', "tokens[1].source", "camera-push"),
    ('partner = "police"\nrole = "sensor"', 'partner = "army"\nrole = "sensor"',
     "tokens[1].partner", 'partner = "police"'),
    ('role = "viewer"', 'role = "viewer"\nsource = "camera-push"', "tokens[0].source",
     '"sensor"'),
])
def test_bad_sensor_tokens_are_named(tmp_path: Path, old: str, new: str, key: str,
                                     fix: str) -> None:
    assert old in PUSH
    (tmp_path / "node.toml").write_text(PUSH.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "node.toml")
    assert key in str(err.value) and fix in str(err.value), str(err.value)
