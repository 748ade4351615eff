"""The federation message: the picture round-trips between two frames; every bad
message — forged, replayed, reordered, oversize, outside the sender's area, not a
covariance — is refused whole with its reason; field-level release holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence import sim
from skyfence.errors import InputError
from skyfence.federation.codec import FieldPolicy, PartnerPicture, PictureDecoder, encode_picture
from skyfence.geo import Origin
from skyfence.node.config import load_config
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import SensorSpec
from skyfence.track import Tracker


@pytest.fixture(scope="module")
def frames() -> tuple[Origin, list[Frame]]:
    r = sim.build("spread", n_targets=10, seed=1, duration_s=15.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    out = []
    for a, b in zip(*batch_bounds(r.detections.t), strict=True):
        out.append(picture.update(tracker.step(r.detections.take(slice(a, b)))))
    return r.scenario.origin, out


def _decode(payload: bytes, **kw: object) -> PartnerPicture:
    (msg,) = PictureDecoder(partner="police", **kw).feed(payload)  # type: ignore[arg-type]
    assert isinstance(msg, PartnerPicture), msg
    return msg


def test_a_picture_round_trips_into_another_frame(frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    frame = fr[-1]
    payload = encode_picture(frame, origin, sender="police", recipient="army", node="hq")
    msg = _decode(payload, recipient="army")
    shown = frame.tracks.status != 0
    assert msg.id.tolist() == frame.tracks.id[shown].tolist() and len(msg.id) >= 8
    # Into a frame 4 km away and 50 m higher: the same places on the earth, the same
    # covariances seen in rotated axes (eigenvalues kept).
    there = Origin(origin.lat_deg + 0.02, origin.lon_deg + 0.03, origin.alt_m + 50.0)
    spec = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                      noise_std=(math.nan, math.nan, math.nan))
    from skyfence.scenario import Scenario

    det = msg.detections(Scenario(name="army", origin=there, sensors=(spec,)), 0)
    back = origin.ecef_to_enu(there.enu_to_ecef(det.z))
    assert np.allclose(back, frame.tracks.x[shown, :3], atol=1e-6)
    v_back = det.reported.x[:, 3:6] @ there.rotation @ origin.rotation.T  # type: ignore[union-attr]
    assert np.allclose(v_back, frame.tracks.x[shown, 3:6], atol=1e-9)
    assert np.allclose(np.linalg.eigvalsh(det.reported.P),  # type: ignore[union-attr]
                       np.linalg.eigvalsh(frame.tracks.P[shown, :6, :6]), rtol=1e-6)
    assert det.reported.ref[0] == f"police:{msg.id[0]}"  # type: ignore[union-attr]


def test_field_policy_snaps_positions_and_drops_identities(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    frame = fr[-1]
    plain = _decode(encode_picture(frame, origin, sender="police", recipient="army", node="n"))
    coarse = _decode(encode_picture(frame, origin, sender="police", recipient="army", node="n",
                                    policy=FieldPolicy(round_m=1000.0, identity=False)))
    moved = np.linalg.norm(coarse.x[:, :3] - plain.x[:, :3], axis=1)
    assert moved.max() <= 1000.0 * math.sqrt(3) and moved.mean() > 50.0
    from skyfence.geo import ecef_to_geodetic

    lat, _, _ = ecef_to_geodetic(coarse.x[:, :3])
    cell = math.degrees(1000.0 / 6_371_000.0)
    assert np.allclose(lat / cell, np.round(lat / cell), atol=1e-6)
    assert (coarse.identity == "").all()
    grown = coarse.P[:, 0, 0] - plain.P[:, 0, 0]
    assert np.allclose(grown, 1000.0**2 / 12.0)


def test_bad_messages_are_refused_with_their_reason(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    good = [encode_picture(f, origin, sender="police", recipient="army", node="n")
            for f in fr[-3:]]
    dec = PictureDecoder(partner="police", recipient="army", max_message_bytes=1 << 20)
    body = json.loads(good[1])
    forged = json.dumps({**body, "from": "airport"}).encode()
    wrong_to = json.dumps({**body, "to": "navy"}).encode()
    notpd = json.loads(good[1])
    notpd["tracks"]["P"][0] = [0.0] * 21
    nan = good[1].replace(b'"t":', b'"t":NaN,"x":', 1)
    cases = [
        (forged, "forged sender"),
        (wrong_to, "wrong recipient"),
        (json.dumps(notpd).encode(), "not positive definite"),
        (b"\x00\xff not json", "not JSON"),
        (b"[1, 2]", "not a version 1"),
        (nan, "not JSON"),
        (b" " * (1 << 20) + b"{}", "oversize"),
    ]
    for payload, reason in cases:
        (rej,) = dec.feed(payload)
        assert not isinstance(rej, PartnerPicture) and reason in rej.reason, (reason, rej)
    # The good ones still go through, in order; a replay, and one older, do not.
    assert isinstance(dec.feed(good[1])[0], PartnerPicture)
    assert "replayed or reordered" in dec.feed(good[1])[0].reason  # type: ignore[union-attr]
    assert "replayed or reordered" in dec.feed(good[0])[0].reason  # type: ignore[union-attr]
    assert isinstance(dec.feed(good[2])[0], PartnerPicture)
    assert dec.counters["accepted"] == 2 and dec.counters["forged sender"] == 1


def test_tracks_outside_the_senders_area_are_refused(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    payload = encode_picture(fr[-1], origin, sender="police", recipient="army", node="n")
    lat, lon = origin.lat_deg, origin.lon_deg
    inside = {"lat_min": lat - 0.5, "lat_max": lat + 0.5, "lon_min": lon - 0.5,
              "lon_max": lon + 0.5}
    assert isinstance(_decode(payload, area=inside), PartnerPicture)
    north = {**inside, "lat_min": lat + 0.01}
    (rej,) = PictureDecoder(partner="police", area=north).feed(payload)
    assert "outside the sender's area" in rej.reason  # type: ignore[union-attr]
    with pytest.raises(InputError, match="area"):
        PictureDecoder(partner="police", area={"lat_min": 1})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.builds(
    lambda d: json.dumps(d).encode(),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(
                     st.sampled_from(["v", "from", "to", "t", "tracks", "id", "x", "P",
                                      "class", "identity"]), c, max_size=6),
                 max_leaves=30)))
def test_the_decoder_never_raises(data: bytes) -> None:
    out = PictureDecoder(partner="police").feed(data)
    assert len(out) == 1


FED = """
[node]
name = "army-hq"
origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }

[[partners]]
id = "army"

[[partners]]
id = "police"

[[sensors]]
id = "radar1"
kind = "radar"
position_enu_m = [0.0, 0.0, 12.0]
pd = 0.9
noise_std = { range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }
release = ["police"]

[federation]
url = "nats://127.0.0.1:4222"
password_env = "SKYFENCE_TEST_NATS_PASSWORD"

[[federation.send]]
to = "police"
round_m = 500.0
identity = false

[[federation.receive]]
from = "police"
area = { lat_min = 47.0, lat_max = 48.0, lon_min = 8.0, lon_max = 9.0 }
"""


def test_federation_in_node_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYFENCE_TEST_NATS_PASSWORD", "s3cret")
    (tmp_path / "node.toml").write_text(FED)
    cfg = load_config(tmp_path / "node.toml")
    fed = cfg.federation
    assert fed is not None and (fed.partner, fed.user, fed.password) == ("army", "army", "s3cret")
    (send,) = fed.send
    assert send.to == "police" and send.policy == FieldPolicy(round_m=500.0, identity=False)
    assert len(fed.receive) == 1
    # police's feed is a track sensor of this node, owned by army, released to nobody.
    fed_sensor = cfg.scenario.sensors[-1]
    assert fed_sensor.id == "fed-police" and fed_sensor.kind == "track"
    assert cfg.release is not None and cfg.release.released_to("fed-police") == {"army"}
    (src,) = [s for s in cfg.sources if s.transport == "nats"]
    assert src.source.format == "skyfence-picture"
    assert src.source.options["partner"] == "police" and "area" in src.source.options


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('url = "nats://', 'url = "http://', "federation.url", "nats://host:4222"),
    ('to = "police"', 'to = "navy"', "federation.send[0].to", "[[partners]]"),
    ('to = "police"', 'to = "army"', "federation.send[0].to", "[[partners]]"),
    ('from = "police"', 'from = "army"', "federation.receive[0].from", "does not hear"),
    ('from = "police"', 'from = "Police HQ"', "federation.receive[0].from", "a-z"),
    ("lat_min = 47.0, ", "", "federation.receive[0].area", "lat_min"),
    ("round_m = 500.0", "round_m = -1.0", "federation.send[0].round_m", "round_m in"),
    ('password_env = "SKYFENCE_TEST_NATS_PASSWORD"', 'password_env = "NOPE_NOT_SET"',
     "federation.password_env", "export NOPE_NOT_SET"),
])
def test_bad_federation_keys_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       old: str, new: str, key: str, fix: str) -> None:
    monkeypatch.setenv("SKYFENCE_TEST_NATS_PASSWORD", "s3cret")
    assert old in FED
    (tmp_path / "node.toml").write_text(FED.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "node.toml")
    assert key in str(err.value) and fix in str(err.value), str(err.value)
